package clientapi

import (
	"net/http"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/plugins/driver"
)

// The stats wire types are the API client's: one definition of the shape
// servers proxy and clients decode.
type (
	AllocResourceUsage = api.AllocResourceUsage
	TaskResourceUsage  = api.TaskResourceUsage
	ResourceUsage      = api.ResourceUsage
	MemoryStats        = api.MemoryStats
	CpuStats           = api.CpuStats
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
