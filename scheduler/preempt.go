package scheduler

import (
	"sort"

	"github.com/berth-dev/berth/structs"
)

// preemptPriorityDelta is how much lower than the placing job's priority
// an allocation's job must be to be preempted, as in Nomad.
const preemptPriorityDelta = 10

// preemptionEnabled reports whether the scheduler configuration lets jobs
// of this type preempt.
func (s *schedCtx) preemptionEnabled() bool {
	pc := s.sconf.PreemptionConfig
	switch s.job.Type {
	case structs.JobTypeSystem:
		return pc.SystemSchedulerEnabled
	case structs.JobTypeSysBatch:
		return pc.SysBatchSchedulerEnabled
	case structs.JobTypeBatch:
		return pc.BatchSchedulerEnabled
	default:
		return pc.ServiceSchedulerEnabled
	}
}

// allocPriority is the priority of an allocation's job.
func allocPriority(a *structs.Allocation) (int, bool) {
	if a.Job == nil {
		return 0, false
	}
	return a.Job.Priority, true
}

// preemptFor returns the allocations to evict on the node so that the ask
// fits: only allocations of other jobs whose priority is at least
// preemptPriorityDelta lower, lowest priority first and as few as
// possible. It returns nil when no set of evictions makes room.
func (s *schedCtx) preemptFor(ask *tgAsk, u *nodeUsage) []*structs.Allocation {
	jobID, ns := s.jobKey()
	prio := s.job.Priority
	var cands []*structs.Allocation
	for _, a := range u.allocs {
		p, ok := allocPriority(a)
		if !ok || (a.JobID == jobID && a.Namespace == ns) || p > prio-preemptPriorityDelta {
			continue
		}
		cands = append(cands, a)
	}
	if len(cands) == 0 {
		return nil
	}
	sort.SliceStable(cands, func(i, j int) bool {
		pi, _ := allocPriority(cands[i])
		pj, _ := allocPriority(cands[j])
		if pi != pj {
			return pi < pj
		}
		return allocSize(cands[i]) > allocSize(cands[j])
	})

	// Allocations holding a static port the ask needs must go.
	var chosen []*structs.Allocation
	picked := map[string]bool{}
	for _, sp := range ask.staticPorts {
		if !u.portUsed(sp.Value) {
			continue
		}
		holder := portHolder(cands, sp.Value)
		if holder == nil {
			return nil // reserved by the node or held by a job we may not preempt
		}
		if !picked[holder.ID] {
			picked[holder.ID] = true
			chosen = append(chosen, holder)
		}
	}
	fits := func(set []*structs.Allocation) bool {
		var cpu, mem, disk int64
		var cores int
		for _, a := range set {
			c := a.ComparableResources()
			cpu += c.CpuShares
			mem += c.MemoryMB
			disk += c.DiskMB
			cores += c.Cores
		}
		askCPU := ask.cpu + int64(ask.cores)*u.mhzPerCore
		return u.cpu-cpu+askCPU <= u.capCPU &&
			u.mem-mem+ask.mem <= u.capMem &&
			u.disk-disk+ask.disk <= u.capDisk &&
			(ask.cores == 0 || u.cores-cores+ask.cores <= u.capCores)
	}
	for _, a := range cands {
		if fits(chosen) {
			break
		}
		if !picked[a.ID] {
			picked[a.ID] = true
			chosen = append(chosen, a)
		}
	}
	if !fits(chosen) {
		return nil
	}
	// Drop evictions that turned out unnecessary, highest priority first.
	for i := len(chosen) - 1; i >= 0; i-- {
		if holdsAskedPort(chosen[i], ask) {
			continue
		}
		rest := append(append([]*structs.Allocation(nil), chosen[:i]...), chosen[i+1:]...)
		if fits(rest) {
			chosen = rest
		}
	}
	return chosen
}

func allocSize(a *structs.Allocation) int64 {
	c := a.ComparableResources()
	return c.CpuShares + c.MemoryMB
}

func portHolder(allocs []*structs.Allocation, port int) *structs.Allocation {
	var holder *structs.Allocation
	for _, a := range allocs {
		structs.AllocPorts(a.AllocatedResources, func(p int) {
			if p == port {
				holder = a
			}
		})
		if holder != nil {
			return holder
		}
	}
	return nil
}

func holdsAskedPort(a *structs.Allocation, ask *tgAsk) bool {
	held := false
	structs.AllocPorts(a.AllocatedResources, func(p int) {
		for _, sp := range ask.staticPorts {
			if sp.Value == p {
				held = true
			}
		}
	})
	return held
}

// bestPreemption picks, among exhausted nodes, the one that needs the
// fewest and lowest-priority evictions.
func (s *schedCtx) bestPreemption(ask *tgAsk, nodes []*structs.Node, opts placeOpts, binpack bool) *candidate {
	var best *candidate
	bestCost := 0
	for _, n := range nodes {
		u := s.usage(n)
		evict := s.preemptFor(ask, u)
		if evict == nil {
			continue
		}
		cost := 0
		for _, a := range evict {
			p, _ := allocPriority(a)
			cost += 1000 + p
		}
		if best == nil || cost < bestCost {
			c := s.score(ask, n, u, opts, binpack)
			c.preempt = evict
			best, bestCost = &c, cost
		}
	}
	return best
}

// applyPreemption evicts the chosen allocations for the new one.
func (s *schedCtx) applyPreemption(evict []*structs.Allocation, newAlloc *structs.Allocation) {
	for _, a := range evict {
		s.preempt(a, newAlloc.ID)
		newAlloc.PreemptedAllocations = append(newAlloc.PreemptedAllocations, a.ID)
		s.plan.Annotations.PreemptedAllocs = append(s.plan.Annotations.PreemptedAllocs, a.Stub())
		s.desired(newAlloc.TaskGroup).Preemptions++
	}
}
