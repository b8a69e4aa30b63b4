package ctrtask

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"

	"github.com/berth-dev/berth/plugins/driver"
)

// Stats samples the task's cgroup (v1 or v2, whichever the shim reports).
// CPU.Percent is computed against the previous Stats call of this Runtime
// (0 on the first); CPU times are in nanoseconds. TotalTicks is left 0: it
// needs the host's MHz, which the agent knows.
func (r *Runtime) Stats(ctx context.Context, id string) (*driver.TaskResourceUsage, error) {
	e, err := r.lookup(id)
	if err != nil {
		return nil, err
	}
	v, err := r.cgroupMetrics(ctx, e)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	u := &driver.TaskResourceUsage{Timestamp: now.UnixNano()}
	var cpuTotalNs uint64
	switch s := v.(type) {
	case *v1.Metrics:
		cpuTotalNs = fillV1(u, s)
	case *v2.Metrics:
		cpuTotalNs = fillV2(u, s)
	default:
		return nil, fmt.Errorf("task %s metrics: unexpected type %T", id, v)
	}
	e.statsMu.Lock()
	if !e.lastTime.IsZero() && cpuTotalNs >= e.lastCPU {
		if wall := now.Sub(e.lastTime); wall > 0 {
			u.CPU.Percent = float64(cpuTotalNs-e.lastCPU) / float64(wall.Nanoseconds()) * 100
		}
	}
	e.lastCPU, e.lastTime = cpuTotalNs, now
	e.statsMu.Unlock()
	return u, nil
}

// fillV1 decodes cgroup v1 metrics; returns total CPU time in ns.
func fillV1(u *driver.TaskResourceUsage, s *v1.Metrics) uint64 {
	var total uint64
	if c := s.CPU; c != nil {
		if c.Usage != nil {
			total = c.Usage.Total
			u.CPU.UserMode = float64(c.Usage.User)
			u.CPU.SystemMode = float64(c.Usage.Kernel)
		}
		if c.Throttling != nil {
			u.CPU.ThrottledPeriods = c.Throttling.ThrottledPeriods
			u.CPU.ThrottledTime = c.Throttling.ThrottledTime
		}
		u.CPU.Measured = []string{"System Mode", "User Mode", "Throttled Periods", "Throttled Time", "Percent"}
	}
	if mem := s.Memory; mem != nil {
		u.Memory.RSS = mem.TotalRSS
		u.Memory.Cache = mem.TotalCache
		if mem.Usage != nil {
			u.Memory.Usage = mem.Usage.Usage
			u.Memory.MaxUsage = mem.Usage.Max
		}
		if mem.Swap != nil && mem.Usage != nil && mem.Swap.Usage > mem.Usage.Usage {
			// memsw counts memory+swap.
			u.Memory.Swap = mem.Swap.Usage - mem.Usage.Usage
		}
		u.Memory.Measured = []string{"RSS", "Cache", "Swap", "Usage", "Max Usage"}
	}
	return total
}

// fillV2 decodes cgroup v2 metrics; returns total CPU time in ns.
func fillV2(u *driver.TaskResourceUsage, s *v2.Metrics) uint64 {
	var total uint64
	if c := s.CPU; c != nil {
		total = c.UsageUsec * 1000
		u.CPU.UserMode = float64(c.UserUsec * 1000)
		u.CPU.SystemMode = float64(c.SystemUsec * 1000)
		u.CPU.ThrottledPeriods = c.NrThrottled
		u.CPU.ThrottledTime = c.ThrottledUsec * 1000
		u.CPU.Measured = []string{"System Mode", "User Mode", "Throttled Periods", "Throttled Time", "Percent"}
	}
	if mem := s.Memory; mem != nil {
		u.Memory.RSS = mem.Anon
		u.Memory.Cache = mem.File
		u.Memory.Usage = mem.Usage
		u.Memory.Swap = mem.SwapUsage
		u.Memory.Measured = []string{"RSS", "Cache", "Swap", "Usage"}
	}
	return total
}

// cgroupOOMKills reads how many processes the kernel's OOM killer killed
// in e's cgroup (cgroup v1 memory.oom_control, v2 memory.events). The
// cgroup lives until the task is deleted, so this works after the exit;
// ok is false when the shim cannot tell.
func (r *Runtime) cgroupOOMKills(ctx context.Context, e *entry) (kills uint64, ok bool) {
	v, err := r.cgroupMetrics(ctx, e)
	if err != nil {
		return 0, false
	}
	switch s := v.(type) {
	case *v1.Metrics:
		if s.MemoryOomControl != nil {
			return s.MemoryOomControl.OomKill, true
		}
	case *v2.Metrics:
		if s.MemoryEvents != nil {
			return s.MemoryEvents.OomKill, true
		}
	}
	return 0, false
}

// cgroupMetrics asks the shim for e's cgroup metrics: a *v1.Metrics or a
// *v2.Metrics.
func (r *Runtime) cgroupMetrics(ctx context.Context, e *entry) (any, error) {
	m, err := e.task.Metrics(r.WithNamespace(ctx))
	if err != nil {
		return nil, fmt.Errorf("task %s metrics: %w", e.id, err)
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return nil, fmt.Errorf("task %s metrics: decode %s: %w", e.id, m.Data.GetTypeUrl(), err)
	}
	return v, nil
}
