package hoststats

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProc writes a procfs with the fixtures and returns its directory.
func fakeProc(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"stat":           "cpu  0 0 0 0\ncpu0 100 0 100 200 0 0 0 0\ncpu1 0 0 0 400 0 0 0 0\n",
		"meminfo":        meminfoFixture,
		"uptime":         "3600.50 7000.00\n",
		"cpuinfo":        "processor : 0\ncpu MHz : 1000\n\nprocessor : 1\ncpu MHz : 3000\n",
		"filesystems":    "nodev\tproc\nnodev\ttmpfs\n\text4\n\txfs\n",
		"self/mountinfo": mountinfoFixture,
	}
	for name, text := range files {
		writeFile(t, filepath.Join(dir, name), text)
	}
	return dir
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeCollector runs on fixtures and a fake clock. Its sleep advances the
// clock, counts, and runs onSleep (to move /proc/stat on) when set.
type fakeCollector struct {
	*Collector
	proc    string
	clock   *fakeClock
	mu      sync.Mutex
	sleeps  int
	onSleep func()
}

func newFakeCollector(t *testing.T) *fakeCollector {
	f := &fakeCollector{proc: fakeProc(t), clock: &fakeClock{t: time.Unix(1_700_000_000, 0)}}
	f.Collector = New(Options{ProcDir: f.proc, DataDir: "/tmp/berth-data"})
	f.now = f.clock.now
	f.sleep = func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.sleeps++
		hook := f.onSleep
		f.mu.Unlock()
		if hook != nil {
			hook()
		}
		f.clock.add(d)
		return ctx.Err()
	}
	f.statfs = func(path string) (fsUsage, error) {
		if path == "/mnt/my disk" {
			return fsUsage{}, errors.New("stale handle") // left out, not fatal
		}
		return fsUsage{Size: 1000, Free: 500, Avail: 500, Inodes: 100, InodesFree: 75}, nil
	}
	return f
}

func (f *fakeCollector) sleepCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.sleeps }

func TestCollectorOnFixtures(t *testing.T) {
	f := newFakeCollector(t)
	statFile := filepath.Join(f.proc, "stat")
	// between the first call's two samples cpu0 is half busy, cpu1 idle
	f.onSleep = func() { writeFile(t, statFile, "cpu0 150 0 150 300 0 0 0 0\ncpu1 0 0 0 500 0 0 0 0\n") }
	s, err := f.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.Total != 24683584*1024 || s.Uptime != 3600 || s.Timestamp != f.clock.now().UnixNano() {
		t.Fatalf("memory %+v uptime %d ts %d", s.Memory, s.Uptime, s.Timestamp)
	}
	if f.sleepCount() != 1 || len(s.CPU) != 2 || s.CPU[0].CPU != "cpu0" || s.CPU[0].User != 25 || s.CPU[0].System != 25 || s.CPU[1].Idle != 100 {
		t.Fatalf("%d sleeps, cpu %+v %+v", f.sleepCount(), s.CPU[0], s.CPU[1])
	}
	// half of one 2000 MHz core
	if s.CPUTicksConsumed != 1000 {
		t.Fatalf("ticks %v, want 1000", s.CPUTicksConsumed)
	}
	// "/" only: /mnt/my disk failed statfs, tmpfs, proc and overlay are not real
	if len(s.DiskStats) != 1 || s.DiskStats[0].Mountpoint != "/" || s.DiskStats[0].Device != "/dev/vda" || s.DiskStats[0].UsedPercent != 50 {
		t.Fatalf("disks %+v", s.DiskStats)
	}
	if a := s.AllocDirStats; a == nil || a.Mountpoint != "/tmp" || a.Device != "tmpfs" || a.InodesUsedPercent != 25 {
		t.Fatalf("alloc dir %+v", a)
	}

	// within MinCPUInterval: the last figures, even though /proc/stat moved
	writeFile(t, statFile, "cpu0 250 0 150 300 0 0 0 0\ncpu1 100 0 0 500 0 0 0 0\n")
	f.clock.add(MinCPUInterval / 2)
	s2, err := f.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s2.CPU[0].User != 25 || s2.CPU[1].Idle != 100 {
		t.Fatalf("reused cpu %+v %+v", s2.CPU[0], s2.CPU[1])
	}
	// the returned slices are copies: a caller cannot corrupt the cache
	s2.CPU[0].User = -1

	// after it: over the interval since the previous sample, no waiting
	f.clock.add(MinCPUInterval)
	s3, err := f.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.sleepCount() != 1 || s3.CPU[0].User != 100 || s3.CPU[1].User != 100 || s3.CPUTicksConsumed != 4000 {
		t.Fatalf("%d sleeps, interval cpu %+v %+v ticks %v", f.sleepCount(), s3.CPU[0], s3.CPU[1], s3.CPUTicksConsumed)
	}

	// after MaxCPUInterval: a fresh pair of samples, not a long average
	f.clock.add(MaxCPUInterval + time.Second)
	f.onSleep = func() { writeFile(t, statFile, "cpu0 250 0 150 400 0 0 0 0\ncpu1 100 0 10 510 0 0 0 0\n") }
	s4, err := f.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.sleepCount() != 2 || s4.CPU[0].Idle != 100 || s4.CPU[1].System != 50 {
		t.Fatalf("%d sleeps, fresh cpu %+v %+v", f.sleepCount(), s4.CPU[0], s4.CPU[1])
	}
}

func TestCollectorCanceledWhileSampling(t *testing.T) {
	f := newFakeCollector(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled collect: %v", err)
	}
}

func TestCollectorErrors(t *testing.T) {
	for _, name := range []string{"stat", "meminfo", "uptime", "self/mountinfo"} {
		f := newFakeCollector(t)
		if err := os.Remove(filepath.Join(f.proc, name)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Collect(context.Background()); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: %v", name, err)
		}
		f = newFakeCollector(t)
		writeFile(t, filepath.Join(f.proc, name), "garbage")
		if _, err := f.Collect(context.Background()); !errors.Is(err, ErrMalformed) {
			t.Errorf("garbage %s: %v", name, err)
		}
	}
	// optional files: stats without them
	f := newFakeCollector(t)
	os.Remove(filepath.Join(f.proc, "cpuinfo"))
	os.Remove(filepath.Join(f.proc, "filesystems"))
	s, err := f.Collect(context.Background())
	if err != nil || s.CPUTicksConsumed != 0 || len(s.DiskStats) != 1 {
		t.Fatalf("without optional files: %+v, %v", s, err)
	}
}

func TestCollectorConcurrent(t *testing.T) {
	f := newFakeCollector(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				f.clock.add(MinCPUInterval)
				if _, err := f.Collect(context.Background()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestCollectorOnThisHost reads the real /proc: the figures must agree
// with what the kernel says directly.
func TestCollectorOnThisHost(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip("no procfs:", err)
	}
	dataDir := t.TempDir()
	c := New(Options{DataDir: dataDir})
	start := time.Now()
	s, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// a first call waits for its second CPU sample
	if waited := time.Since(start); waited < MinCPUInterval {
		t.Fatalf("first collect took %v, want at least %v", waited, MinCPUInterval)
	}
	raw, _ := os.ReadFile("/proc/meminfo")
	m, err := ParseMeminfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.Total != m.Total || s.Memory.Used+s.Memory.Available != s.Memory.Total {
		t.Fatalf("memory %+v, MemTotal %d", s.Memory, m.Total)
	}
	if len(s.CPU) == 0 || s.Uptime == 0 {
		t.Fatalf("cpu %d entries, uptime %d", len(s.CPU), s.Uptime)
	}
	for _, cpu := range s.CPU {
		if sum := cpu.User + cpu.System + cpu.Idle; sum < 0 || sum > 100.0001 {
			t.Fatalf("%+v sums to %v", cpu, sum)
		}
	}
	a := s.AllocDirStats
	if a == nil || a.Size == 0 || a.Mountpoint == "" || a.UsedPercent < 0 || a.UsedPercent > 100 {
		t.Fatalf("alloc dir %+v", a)
	}
	time.Sleep(MinCPUInterval + 50*time.Millisecond)
	if s2, err := c.Collect(context.Background()); err != nil || s2.Timestamp <= s.Timestamp || len(s2.CPU) != len(s.CPU) {
		t.Fatalf("second sample %+v, %v", s2, err)
	}
}
