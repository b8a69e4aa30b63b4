package clientapi

import (
	"net/http"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
)

// The stats wire shapes, as Nomad's api.AllocResourceUsage and friends.
type (
	// AllocResourceUsage is an allocation's usage: the sum over its tasks
	// and each task's own.
	AllocResourceUsage struct {
		ResourceUsage *ResourceUsage
		Tasks         map[string]*TaskResourceUsage
		Timestamp     int64
	}
	// TaskResourceUsage is one task's usage and that of its processes.
	TaskResourceUsage struct {
		ResourceUsage *ResourceUsage
		Timestamp     int64
		Pids          map[string]*ResourceUsage
	}
	// ResourceUsage is memory and CPU usage.
	ResourceUsage struct {
		MemoryStats *MemoryStats
		CpuStats    *CpuStats
		DeviceStats []any
	}
	// MemoryStats is memory in bytes.
	MemoryStats struct {
		RSS            uint64
		Cache          uint64
		Swap           uint64
		Usage          uint64
		MaxUsage       uint64
		KernelUsage    uint64
		KernelMaxUsage uint64
		Measured       []string
	}
	// CpuStats is CPU time and percentage.
	CpuStats struct {
		SystemMode       float64
		UserMode         float64
		TotalTicks       float64
		ThrottledPeriods uint64
		ThrottledTime    uint64
		Percent          float64
		Measured         []string
	}
)

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	allocID := r.PathValue("alloc")
	if _, err := h.allocs.TaskNames(allocID); err != nil {
		h.writeError(w, r, err)
		return
	}
	usage, err := h.allocs.Stats(r.Context(), allocID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, toAllocUsage(usage, time.Now()))
}

// toAllocUsage converts driver samples to Nomad's shape and sums them.
func toAllocUsage(usage map[string]*driver.TaskResourceUsage, now time.Time) *AllocResourceUsage {
	out := &AllocResourceUsage{
		ResourceUsage: &ResourceUsage{MemoryStats: &MemoryStats{}, CpuStats: &CpuStats{}},
		Tasks:         make(map[string]*TaskResourceUsage, len(usage)),
	}
	for name, u := range usage {
		if u == nil {
			continue
		}
		tu := &TaskResourceUsage{ResourceUsage: toUsage(u), Timestamp: u.Timestamp}
		for pid, p := range u.PIDs {
			if p != nil {
				if tu.Pids == nil {
					tu.Pids = map[string]*ResourceUsage{}
				}
				tu.Pids[pid] = toUsage(p)
			}
		}
		out.Tasks[name] = tu
		sum := out.ResourceUsage
		sum.MemoryStats.RSS += u.Memory.RSS
		sum.MemoryStats.Cache += u.Memory.Cache
		sum.MemoryStats.Swap += u.Memory.Swap
		sum.MemoryStats.Usage += u.Memory.Usage
		sum.MemoryStats.MaxUsage += u.Memory.MaxUsage
		sum.CpuStats.SystemMode += u.CPU.SystemMode
		sum.CpuStats.UserMode += u.CPU.UserMode
		sum.CpuStats.TotalTicks += u.CPU.TotalTicks
		sum.CpuStats.ThrottledPeriods += u.CPU.ThrottledPeriods
		sum.CpuStats.ThrottledTime += u.CPU.ThrottledTime
		sum.CpuStats.Percent += u.CPU.Percent
		sum.MemoryStats.Measured = mergeMeasured(sum.MemoryStats.Measured, u.Memory.Measured)
		sum.CpuStats.Measured = mergeMeasured(sum.CpuStats.Measured, u.CPU.Measured)
		out.Timestamp = max(out.Timestamp, u.Timestamp)
	}
	if out.Timestamp == 0 {
		out.Timestamp = now.UnixNano()
	}
	return out
}

func toUsage(u *driver.TaskResourceUsage) *ResourceUsage {
	return &ResourceUsage{
		MemoryStats: &MemoryStats{
			RSS: u.Memory.RSS, Cache: u.Memory.Cache, Swap: u.Memory.Swap,
			Usage: u.Memory.Usage, MaxUsage: u.Memory.MaxUsage, Measured: u.Memory.Measured,
		},
		CpuStats: &CpuStats{
			SystemMode: u.CPU.SystemMode, UserMode: u.CPU.UserMode, TotalTicks: u.CPU.TotalTicks,
			ThrottledPeriods: u.CPU.ThrottledPeriods, ThrottledTime: u.CPU.ThrottledTime,
			Percent: u.CPU.Percent, Measured: u.CPU.Measured,
		},
	}
}

func mergeMeasured(have, add []string) []string {
	for _, m := range add {
		found := false
		for _, h := range have {
			if h == m {
				found = true
				break
			}
		}
		if !found {
			have = append(have, m)
		}
	}
	return have
}
