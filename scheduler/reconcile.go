package scheduler

import (
	"sort"
	"time"

	"github.com/berth-dev/berth/structs"
)

// Descriptions of stops, as Nomad words them.
const (
	descJobStopped     = "alloc not needed since job was stopped"
	descJobDeregister  = "alloc not needed since job was deregistered"
	descNotNeeded      = "alloc not needed due to job update"
	descUpdating       = "alloc is being updated due to job update"
	descLost           = "alloc is lost since its node is down"
	descRescheduled    = "alloc was rescheduled because it failed"
	descNodeIneligible = "alloc not needed as node is no longer eligible"
	descGroupRemoved   = "alloc not needed since its group was removed from the job"
)

// placement is one allocation the reconciler wants placed.
type placement struct {
	ask   *tgAsk
	name  string
	prev  *structs.Allocation
	avoid []string
	// stopPrev stops prev once the replacement is placed (a failed alloc
	// being rescheduled).
	stopPrev bool
	// node pins the placement to a node (system jobs).
	node *structs.Node
}

type slotKind int

const (
	slotLive     slotKind = iota // running or pending on a healthy node
	slotOccupied                 // terminal but holding its name (complete batch, failed not (yet) rescheduled)
	slotReplace                  // to be replaced: lost or rescheduled now
)

type slot struct {
	index    int
	alloc    *structs.Allocation
	kind     slotKind
	avoid    []string
	stopPrev bool
}

// followup is a failed allocation waiting for its reschedule delay.
type followup struct {
	at    time.Time
	alloc *structs.Allocation
}

// nodeGone reports whether allocations on the node are lost.
func nodeGone(n *structs.Node) bool {
	return n == nil || n.Status == structs.NodeStatusDown || n.Status == structs.NodeStatusDisconnected
}

// updateLimit is the group's update max_parallel, 0 for no limit.
func updateLimit(job *structs.Job, tg *structs.TaskGroup) int {
	u := tg.Update
	if u == nil {
		u = job.Update
	}
	if u == nil || u.MaxParallel <= 0 {
		return 0
	}
	return u.MaxParallel
}

// stopAll stops every live allocation of the job.
func (s *schedCtx) stopAll(allocs []*structs.Allocation, desc string) {
	for _, a := range allocs {
		if a.TerminalStatus() {
			continue
		}
		s.stop(a, desc, "")
		s.desired(a.TaskGroup).Stop++
	}
}

// reconcileGeneric compares the service or batch job's groups with their
// allocations: it adds stops and in-place updates to the plan and returns
// what to place and which failed allocations need a follow-up evaluation.
func (s *schedCtx) reconcileGeneric(allocs []*structs.Allocation, asks map[string]*tgAsk) ([]placement, []followup) {
	job := s.job
	batch := job.Type == structs.JobTypeBatch
	byTG := map[string][]*structs.Allocation{}
	for _, a := range allocs {
		byTG[a.TaskGroup] = append(byTG[a.TaskGroup], a)
	}
	for name, as := range byTG {
		if job.LookupTaskGroup(name) == nil {
			for _, a := range as {
				if !a.TerminalStatus() {
					s.stop(a, descGroupRemoved, "")
					s.desired(name).Stop++
				}
			}
		}
	}
	now := s.cfg.Now()
	cache := updateCache{}
	var places []placement
	var follow []followup
	for _, tg := range job.TaskGroups {
		ask := asks[tg.Name]
		d := s.desired(tg.Name)
		var slots []slot
		for _, a := range byTG[tg.Name] {
			if a.DesiredStatus != structs.AllocDesiredStatusRun {
				continue
			}
			idx := allocIndex(a.Name)
			switch a.ClientStatus {
			case structs.AllocClientStatusComplete:
				if batch {
					slots = append(slots, slot{index: idx, alloc: a, kind: slotOccupied})
				}
			case structs.AllocClientStatusFailed:
				if a.NextAllocation != "" {
					continue
				}
				dec, at, nodes := decideReschedule(s.state, job, tg, a, now)
				switch dec {
				case rescheduleNow:
					slots = append(slots, slot{index: idx, alloc: a, kind: slotReplace, avoid: nodes, stopPrev: true})
				case rescheduleLater:
					slots = append(slots, slot{index: idx, alloc: a, kind: slotOccupied})
					if a.FollowupEvalID == "" {
						follow = append(follow, followup{at: at, alloc: a})
					}
				default:
					slots = append(slots, slot{index: idx, alloc: a, kind: slotOccupied})
				}
			case structs.AllocClientStatusLost:
			default:
				if sl, ok := s.disconnectedSlot(tg, a, idx); ok { // see disconnect.go
					slots = append(slots, sl)
					continue
				}
				if s.replacedOriginalBack(byTG[tg.Name], a) {
					s.stop(a, descReconnected, "")
					d.Stop++
					continue
				}
				if nodeGone(s.node(a.NodeID)) {
					s.stop(a, descLost, structs.AllocClientStatusLost)
					d.Stop++
					slots = append(slots, slot{index: idx, alloc: a, kind: slotReplace})
					continue
				}
				if migrating(a) { // see migrate.go
					s.stop(a, descMigrating, "")
					d.Migrate++
					slots = append(slots, slot{index: idx, alloc: a, kind: slotReplace})
					continue
				}
				slots = append(slots, slot{index: idx, alloc: a, kind: slotLive})
			}
		}
		sort.SliceStable(slots, func(i, j int) bool {
			if slots[i].index != slots[j].index {
				return slots[i].index < slots[j].index
			}
			return slots[i].kind < slots[j].kind
		})
		used := make(map[int]bool, min(len(slots), tg.Count))
		limit := updateLimit(job, tg)
		destructive := 0
		kept := 0
		for _, sl := range slots {
			if kept >= tg.Count || (sl.index >= 0 && used[sl.index] && sl.kind == slotReplace) {
				if sl.kind == slotLive {
					s.stop(sl.alloc, descNotNeeded, "")
					d.Stop++
				}
				continue
			}
			kept++
			if sl.index >= 0 {
				used[sl.index] = true
			}
			switch sl.kind {
			case slotOccupied:
				d.Ignore++
			case slotReplace:
				d.Place++
				places = append(places, placement{ask: ask, name: sl.alloc.Name, prev: sl.alloc, avoid: sl.avoid, stopPrev: sl.stopPrev})
			case slotLive:
				a := sl.alloc
				if !jobChanged(a, job) {
					d.Ignore++
					continue
				}
				n := s.node(a.NodeID)
				if !cache.destructive(a.Job, job, tg.Name) && s.stillFeasible(ask, n) {
					s.inPlace(a)
					d.InPlaceUpdate++
					continue
				}
				if limit > 0 && destructive >= limit {
					d.Ignore++
					continue
				}
				destructive++
				s.stop(a, descUpdating, "")
				d.DestructiveUpdate++
				places = append(places, placement{ask: ask, name: a.Name, prev: a})
			}
		}
		for idx := 0; kept < tg.Count; idx++ {
			if used[idx] {
				continue
			}
			kept++
			d.Place++
			places = append(places, placement{ask: ask, name: allocName(job.ID, tg.Name, idx)})
		}
	}
	return places, follow
}

// stillFeasible reports whether an allocation's node still meets the
// group's constraints (placement-dependent ones aside).
func (s *schedCtx) stillFeasible(ask *tgAsk, n *structs.Node) bool {
	if n == nil {
		return false
	}
	class := s.nodeClass(n)
	reason, ok := ask.feasible[class]
	if !ok {
		reason = s.classFeasible(ask, n)
		ask.feasible[class] = reason
	}
	if reason != "" {
		return false
	}
	for _, c := range ask.escConstraints {
		if !s.m.meetsConstraint(c, n) {
			return false
		}
	}
	return true
}

// inPlace adds an in-place update of a live allocation to the plan: same
// node and resources, the new job version.
func (s *schedCtx) inPlace(a *structs.Allocation) {
	c := *a
	c.Job = nil
	c.EvalID = s.eval.ID
	c.ModifyTime = s.now()
	s.plan.AppendAlloc(&c)
}
