package scheduler

import (
	"fmt"

	"github.com/berth-dev/berth/structs"
)

// systemScheduler runs system jobs (one allocation per group on every
// eligible, feasible node, following nodes as they join and leave) and
// sysbatch jobs (the same, each run once to completion).
type systemScheduler struct {
	cfg     Config
	state   State
	planner Planner
}

func newSystem(cfg Config, state State, planner Planner) Scheduler {
	return &systemScheduler{cfg: cfg, state: state, planner: planner}
}

// Process reconciles the system job with the nodes and submits the plan.
// System jobs do not leave blocked evaluations: node updates re-evaluate
// them.
func (y *systemScheduler) Process(eval *structs.Evaluation) error {
	return runEval(y.cfg, y.state, y.planner, eval, false, y.compute)
}

func (y *systemScheduler) compute(s *schedCtx) (map[string]*tgAsk, map[string]*structs.AllocMetric, map[string]int, error) {
	allocs, err := s.state.AllocsByJob(s.eval.Namespace, s.eval.JobID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("get allocs: %w", err)
	}
	if s.job == nil || s.job.Stop {
		desc := descJobDeregister
		if s.job != nil {
			desc = descJobStopped
		}
		s.stopAll(allocs, desc)
		return nil, nil, nil, nil
	}
	s.jobAllocs = allocs
	job := s.job
	sysbatch := job.Type == structs.JobTypeSysBatch
	asks := make(map[string]*tgAsk, len(job.TaskGroups))
	queued := make(map[string]int, len(job.TaskGroups))
	failed := map[string]*structs.AllocMetric{}
	preempt := s.preemptionEnabled()
	cache := updateCache{}

	// Allocations per group and node.
	type key struct{ tg, node string }
	live := map[key][]*structs.Allocation{}
	done := map[key]bool{}
	for _, a := range allocs {
		if job.LookupTaskGroup(a.TaskGroup) == nil {
			if !a.TerminalStatus() {
				s.stop(a, descGroupRemoved, "")
				s.desired(a.TaskGroup).Stop++
			}
			continue
		}
		k := key{a.TaskGroup, a.NodeID}
		if a.TerminalStatus() {
			// A sysbatch allocation that ran (or failed) is not run again;
			// a system allocation that ended is replaced.
			if sysbatch && a.DesiredStatus == structs.AllocDesiredStatusRun &&
				(a.ClientStatus == structs.AllocClientStatusComplete || a.ClientStatus == structs.AllocClientStatusFailed) {
				done[k] = true
			}
			continue
		}
		live[k] = append(live[k], a)
	}

	for _, tg := range job.TaskGroups {
		ask := newTGAsk(job, tg)
		asks[tg.Name] = ask
		queued[tg.Name] = 0
		d := s.desired(tg.Name)
		limit := updateLimit(job, tg)
		destructive := 0
		name := allocName(job.ID, tg.Name, 0)
		for _, n := range s.nodes {
			k := key{tg.Name, n.ID}
			existing := live[k]
			delete(live, k)
			if nodeGone(n) {
				for _, a := range existing {
					s.stop(a, descLost, structs.AllocClientStatusLost)
					d.Stop++
				}
				continue
			}
			// Existing allocations stay on ineligible nodes, as in Nomad;
			// they leave nodes that drain or no longer meet the job.
			feasible := s.stillFeasible(ask, n)
			if !feasible || systemDrainStop(n, existing) {
				for _, a := range existing {
					s.stop(a, descNodeIneligible, "")
					d.Stop++
				}
				continue
			}
			if len(existing) > 0 {
				for _, extra := range existing[1:] {
					s.stop(extra, descNotNeeded, "")
					d.Stop++
				}
				a := existing[0]
				switch {
				case !jobChanged(a, job):
					d.Ignore++
				case !cache.destructive(a.Job, job, tg.Name):
					s.inPlace(a)
					d.InPlaceUpdate++
				case limit > 0 && destructive >= limit:
					d.Ignore++
				default:
					destructive++
					s.stop(a, descUpdating, "")
					d.DestructiveUpdate++
					s.placeSystem(ask, n, a.Name, a, preempt, failed, queued)
				}
				continue
			}
			if done[k] || !nodeReady(n) {
				continue
			}
			d.Place++
			s.placeSystem(ask, n, name, nil, preempt, failed, queued)
		}
		// Allocations on nodes that left the cluster.
		for k, as := range live {
			if k.tg != tg.Name {
				continue
			}
			for _, a := range as {
				s.stop(a, descLost, structs.AllocClientStatusLost)
				d.Stop++
			}
		}
	}
	return asks, failed, queued, nil
}

// placeSystem places the group on one given node, preempting when allowed.
func (s *schedCtx) placeSystem(ask *tgAsk, n *structs.Node, name string, prev *structs.Allocation, preempt bool, failed map[string]*structs.AllocMetric, queued map[string]int) {
	tg := ask.tg.Name
	metric := &structs.AllocMetric{NodesEvaluated: 1}
	if reason := s.feasible(ask, n); reason != "" && reason != filterOutOfScope {
		// distinct_* constraints can still rule the node out.
		metric.NodesFiltered = 1
		incr(&metric.ConstraintFiltered, reason)
		s.systemFailed(tg, metric, failed, queued)
		return
	}
	u := s.usage(n)
	c := &candidate{node: n, u: u}
	if dim := u.fit(ask); dim != "" {
		var evict []*structs.Allocation
		if preempt {
			evict = s.preemptFor(ask, u)
		}
		if evict == nil {
			metric.NodesExhausted = 1
			incr(&metric.DimensionExhausted, dim)
			s.systemFailed(tg, metric, failed, queued)
			return
		}
		c.preempt = evict
	}
	c.score = fitScore(u, ask, s.sconf.EffectiveAlgorithm() != structs.SchedulerAlgorithmSpread)
	metric.ScoreMetaData = []*structs.NodeScoreMeta{{NodeID: n.ID, NormScore: c.score, Scores: map[string]float64{scoreBinpack: c.score}}}
	if a, m := s.placeOn(ask, c, name, prev, metric); a == nil {
		s.systemFailed(tg, m, failed, queued)
	}
}

// systemFailed records a failed system placement: the first metric per
// group, the rest coalesced into it.
func (s *schedCtx) systemFailed(tg string, m *structs.AllocMetric, failed map[string]*structs.AllocMetric, queued map[string]int) {
	queued[tg]++
	if f := failed[tg]; f != nil {
		f.CoalescedFailures++
		f.NodesEvaluated += m.NodesEvaluated
		f.NodesFiltered += m.NodesFiltered
		f.NodesExhausted += m.NodesExhausted
		for k, v := range m.ConstraintFiltered {
			f.ConstraintFiltered = addCount(f.ConstraintFiltered, k, v)
		}
		for k, v := range m.DimensionExhausted {
			f.DimensionExhausted = addCount(f.DimensionExhausted, k, v)
		}
		return
	}
	failed[tg] = m
}

func addCount(m map[string]int, k string, v int) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[k] += v
	return m
}
