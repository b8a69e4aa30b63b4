// Package hoststats measures the resource usage of the host an agent runs
// on — CPU, memory, filesystems, uptime — in the shape of Nomad's
// GET /v1/client/stats, by reading /proc and statfs(2) directly.
//
// CPU percentages need two /proc/stat samples. There is no background
// ticker (an idle agent costs nothing): the Collector keeps the previous
// sample and computes each call's percentages over the interval since the
// call before it, when that interval is between MinCPUInterval and
// MaxCPUInterval. Closer calls reuse the last figures rather than divide a
// handful of ticks; a first call, or one after a long quiet spell, takes a
// fresh sample and waits MinCPUInterval for a second one, so that figures
// always describe the last moments, as Nomad's do, not an hour's average.
package hoststats

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
)

const (
	// MinCPUInterval is the shortest interval CPU percentages are computed
	// over; USER_HZ is 100, so shorter ones hold too few ticks to mean
	// much.
	MinCPUInterval = 250 * time.Millisecond
	// MaxCPUInterval is the longest: a previous sample older than this is
	// replaced by a fresh one MinCPUInterval before the answer.
	MaxCPUInterval = 10 * time.Second
)

// Options configure a Collector.
type Options struct {
	// ProcDir is where procfs is mounted; "" is /proc.
	ProcDir string
	// DataDir is the agent's data directory, reported as AllocDirStats;
	// "" leaves AllocDirStats out.
	DataDir string
	// Logger receives filesystems that could not be measured; nil
	// discards.
	Logger *slog.Logger
}

// Collector samples host stats. It is safe for concurrent use.
type Collector struct {
	procDir string
	dataDir string
	logger  *slog.Logger
	statfs  func(path string) (fsUsage, error)
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error

	mu        sync.Mutex
	prev      map[string]CPUTimes
	prevAt    time.Time
	lastCPU   []*api.HostCPUStats
	lastTicks float64
	// mhzPerCore is read from /proc/cpuinfo once: clock speeds reported
	// there do not change enough to matter for CPUTicksConsumed.
	mhzOnce    sync.Once
	mhzPerCore float64
}

// New returns a Collector.
func New(opts Options) *Collector {
	if opts.ProcDir == "" {
		opts.ProcDir = "/proc"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		procDir: opts.ProcDir,
		dataDir: opts.DataDir,
		logger:  opts.Logger.With("component", "hoststats"),
		statfs:  statfsUsage,
		now:     time.Now,
		sleep:   sleepCtx,
	}
}

// Collect takes a sample; it may wait MinCPUInterval for a second CPU
// sample (see the package doc), less if ctx ends first. It fails only when
// a /proc file every Linux host has cannot be read or parsed; a
// filesystem that cannot be measured is logged and left out.
func (c *Collector) Collect(ctx context.Context) (*api.HostStats, error) {
	cpus, ticks, err := c.cpu(ctx)
	if err != nil {
		return nil, err
	}
	now := c.now()
	mem, err := c.memory()
	if err != nil {
		return nil, err
	}
	uptime, err := c.uptime()
	if err != nil {
		return nil, err
	}
	disks, allocDir, err := c.disks()
	if err != nil {
		return nil, err
	}
	return &api.HostStats{
		Memory:           mem,
		CPU:              cpus,
		DiskStats:        disks,
		AllocDirStats:    allocDir,
		Uptime:           uptime,
		Timestamp:        now.UnixNano(),
		CPUTicksConsumed: ticks,
	}, nil
}

func (c *Collector) readProc(name string) ([]byte, error) {
	path := filepath.Join(c.procDir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("host stats: %w", err)
	}
	return data, nil
}

func (c *Collector) memory() (*api.HostMemoryStats, error) {
	data, err := c.readProc("meminfo")
	if err != nil {
		return nil, err
	}
	m, err := ParseMeminfo(data)
	if err != nil {
		return nil, fmt.Errorf("host stats: %w", err)
	}
	return memoryStats(m), nil
}

// memoryStats reports as used what the kernel could not hand out without
// swapping: Total - MemAvailable (or, on old kernels, its classic
// estimate free + buffers + page cache).
func memoryStats(m Meminfo) *api.HostMemoryStats {
	avail := m.Available
	if !m.HasAvailable {
		avail = m.Free + m.Buffers + m.Cached
	}
	avail = min(avail, m.Total)
	return &api.HostMemoryStats{Total: m.Total, Available: avail, Used: m.Total - avail, Free: m.Free}
}

func (c *Collector) uptime() (uint64, error) {
	data, err := c.readProc("uptime")
	if err != nil {
		return 0, err
	}
	up, err := ParseUptime(data)
	if err != nil {
		return 0, fmt.Errorf("host stats: %w", err)
	}
	return up, nil
}

func (c *Collector) cpu(ctx context.Context) ([]*api.HostCPUStats, float64, error) {
	c.mhzOnce.Do(c.loadMHz)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	age := now.Sub(c.prevAt)
	if c.lastCPU != nil && age < MinCPUInterval {
		return cloneCPU(c.lastCPU), c.lastTicks, nil
	}
	if c.prev == nil || age > MaxCPUInterval {
		base, err := c.readStat()
		if err != nil {
			return nil, 0, err
		}
		c.remember(base, now)
		if err := c.sleep(ctx, MinCPUInterval); err != nil {
			return nil, 0, fmt.Errorf("host stats: wait for a second cpu sample: %w", err)
		}
		now = c.now()
	}
	cur, err := c.readStat()
	if err != nil {
		return nil, 0, err
	}
	stats := CPUPercents(c.prev, cur)
	var ticks float64
	for _, s := range stats {
		ticks += (100 - s.Idle) / 100 * c.mhzPerCore
	}
	c.remember(cur, now)
	c.lastCPU, c.lastTicks = stats, ticks
	return cloneCPU(stats), ticks, nil
}

func (c *Collector) readStat() ([]CPUTimes, error) {
	data, err := c.readProc("stat")
	if err != nil {
		return nil, err
	}
	cpus, err := ParseStat(data)
	if err != nil {
		return nil, fmt.Errorf("host stats: %w", err)
	}
	return cpus, nil
}

// remember makes sample the baseline of the next interval; c.mu is held.
func (c *Collector) remember(sample []CPUTimes, at time.Time) {
	c.prev = make(map[string]CPUTimes, len(sample))
	for _, t := range sample {
		c.prev[t.Name] = t
	}
	c.prevAt = at
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Collector) loadMHz() {
	data, err := c.readProc("cpuinfo")
	if err != nil {
		c.logger.Debug("no cpu clock speed: CPUTicksConsumed will be 0", "error", err)
		return
	}
	cores, total, err := ParseCPUInfoMHz(data)
	if err != nil || cores == 0 {
		c.logger.Debug("no cpu clock speed: CPUTicksConsumed will be 0", "error", err)
		return
	}
	c.mhzPerCore = total / float64(cores)
}

func cloneCPU(in []*api.HostCPUStats) []*api.HostCPUStats {
	out := make([]*api.HostCPUStats, len(in))
	for i, s := range in {
		cp := *s
		out[i] = &cp
	}
	return out
}

// CPUPercents splits each CPU's ticks between cur and prev into user
// (user+nice), system (system+irq+softirq) and idle (idle+iowait)
// percentages; steal counts in the total only. A CPU missing from prev
// (first sample, CPU brought online) is measured since boot; counters that
// went backwards (CPU reset) count as zero.
func CPUPercents(prev map[string]CPUTimes, cur []CPUTimes) []*api.HostCPUStats {
	out := make([]*api.HostCPUStats, 0, len(cur))
	for _, t := range cur {
		p := prev[t.Name]
		if t.Total() < p.Total() {
			p = CPUTimes{}
		}
		d := func(a, b uint64) float64 {
			if a < b {
				return 0
			}
			return float64(a - b)
		}
		user := d(t.User, p.User) + d(t.Nice, p.Nice)
		system := d(t.System, p.System) + d(t.IRQ, p.IRQ) + d(t.SoftIRQ, p.SoftIRQ)
		idle := d(t.Idle, p.Idle) + d(t.IOWait, p.IOWait)
		total := user + system + idle + d(t.Steal, p.Steal)
		s := &api.HostCPUStats{CPU: t.Name}
		if total > 0 {
			s.User, s.System, s.Idle = 100*user/total, 100*system/total, 100*idle/total
		} else {
			s.Idle = 100 // no tick counted: nothing ran
		}
		out = append(out, s)
	}
	return out
}
