package scheduler

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/structs"
)

// maxPlanAttempts bounds how often a scheduler re-plans after a partial
// commit before it fails the evaluation.
const maxPlanAttempts = 5

func init() {
	registerFactory(structs.JobTypeService, newGeneric)
	registerFactory(structs.JobTypeBatch, newGeneric)
	registerFactory(structs.JobTypeSystem, newSystem)
	registerFactory(structs.JobTypeSysBatch, newSystem)
}

// genericScheduler is the service and batch scheduler.
type genericScheduler struct {
	cfg     Config
	state   State
	planner Planner
}

func newGeneric(cfg Config, state State, planner Planner) Scheduler {
	return &genericScheduler{cfg: cfg, state: state, planner: planner}
}

// attemptResult is what one planning attempt produced.
type attemptResult struct {
	ctx      *schedCtx
	asks     map[string]*tgAsk
	failed   map[string]*structs.AllocMetric
	queued   map[string]int
	done     bool
	newState State
}

// planFunc computes a plan on a fresh context.
type planFunc func(s *schedCtx) (asks map[string]*tgAsk, failed map[string]*structs.AllocMetric, queued map[string]int, err error)

// Process reconciles the evaluation's job and submits the plan.
func (g *genericScheduler) Process(eval *structs.Evaluation) error {
	return runEval(g.cfg, g.state, g.planner, eval, true, g.compute)
}

// runEval is the loop every scheduler shares: plan, submit, and on a
// partial commit plan again on the refreshed state, a bounded number of
// times; then record the outcome on the evaluation.
func runEval(cfg Config, state State, planner Planner, eval *structs.Evaluation, blockOnFailure bool, compute planFunc) error {
	var last *attemptResult
	for attempt := 0; attempt < maxPlanAttempts; attempt++ {
		r, err := attemptOnce(cfg, state, planner, eval, compute)
		if err != nil {
			return failEval(cfg, planner, eval, state, err.Error(), err)
		}
		last = r
		if r.done {
			return finishEval(cfg, planner, eval, r, blockOnFailure)
		}
		if r.newState != nil {
			state = r.newState
		}
	}
	desc := fmt.Sprintf("maximum attempts reached (%d)", maxPlanAttempts)
	if last != nil {
		eval = eval.Copy()
		eval.FailedTGAllocs = last.failed
		eval.QueuedAllocations = last.queued
	}
	return failEval(cfg, planner, eval, state, desc, nil)
}

func attemptOnce(cfg Config, state State, planner Planner, eval *structs.Evaluation, compute planFunc) (*attemptResult, error) {
	job, err := state.JobByID(eval.Namespace, eval.JobID)
	if err != nil {
		return nil, fmt.Errorf("get job: %w", err)
	}
	s, err := newSchedCtx(cfg, state, eval, job)
	if err != nil {
		return nil, fmt.Errorf("scheduler context: %w", err)
	}
	s.planner = planner
	asks, failed, queued, err := compute(s)
	if err == nil {
		err = s.err
	}
	if err != nil {
		return nil, err
	}
	r := &attemptResult{ctx: s, asks: asks, failed: failed, queued: queued}
	if s.plan.IsNoOp() {
		r.done = true
		return r, nil
	}
	result, newState, err := planner.SubmitPlan(s.plan)
	if err != nil {
		return nil, fmt.Errorf("submit plan: %w", err)
	}
	if result == nil {
		return nil, errors.New("submit plan: no result")
	}
	createPreemptionEvals(cfg, planner, s, result)
	if result.RefreshIndex != 0 {
		r.newState = newState
		if newState == nil {
			r.newState = state
		}
		return r, nil
	}
	r.done = true
	return r, nil
}

// createPreemptionEvals asks for an evaluation of every job that lost
// allocations to preemption, so that they are placed again.
func createPreemptionEvals(cfg Config, planner Planner, s *schedCtx, result *structs.PlanResult) {
	seen := map[[2]string]bool{}
	for _, allocs := range result.NodePreemptions {
		for _, a := range allocs {
			k := [2]string{a.Namespace, a.JobID}
			if seen[k] {
				continue
			}
			seen[k] = true
			orig, _ := s.state.AllocByID(a.ID)
			e := newEval(cfg, s.eval, a.Namespace, a.JobID, structs.EvalTriggerPreemption)
			if orig != nil && orig.Job != nil {
				e.Priority, e.Type, e.JobModifyIndex = orig.Job.Priority, orig.Job.Type, orig.Job.JobModifyIndex
			}
			_ = planner.CreateEval(e)
		}
	}
}

func newEval(cfg Config, parent *structs.Evaluation, ns, jobID, trigger string) *structs.Evaluation {
	now := cfg.Now().UnixNano()
	return &structs.Evaluation{
		ID:           cfg.NewID(),
		Namespace:    ns,
		Priority:     parent.Priority,
		Type:         parent.Type,
		TriggeredBy:  trigger,
		JobID:        jobID,
		Status:       structs.EvalStatusPending,
		PreviousEval: parent.ID,
		CreateTime:   now,
		ModifyTime:   now,
	}
}

func failEval(cfg Config, planner Planner, eval *structs.Evaluation, state State, desc string, cause error) error {
	e := eval.Copy()
	e.Status = structs.EvalStatusFailed
	e.StatusDescription = desc
	e.SnapshotIndex = state.Index()
	e.ModifyTime = cfg.Now().UnixNano()
	if err := planner.UpdateEval(e); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// finishEval records a complete evaluation, with a blocked evaluation for
// what could not be placed.
func finishEval(cfg Config, planner Planner, eval *structs.Evaluation, r *attemptResult, blockOnFailure bool) error {
	s := r.ctx
	e := eval.Copy()
	e.Status = structs.EvalStatusComplete
	e.StatusDescription = ""
	e.SnapshotIndex = s.state.Index()
	e.ModifyTime = cfg.Now().UnixNano()
	e.QueuedAllocations = r.queued
	if len(r.failed) > 0 {
		e.FailedTGAllocs = r.failed
	} else {
		e.FailedTGAllocs = nil
	}
	if len(r.failed) > 0 && blockOnFailure && s.job != nil && !s.job.Stop {
		elig, escaped := classEligibility(s, r)
		if eval.Status == structs.EvalStatusBlocked {
			b := eval.Copy()
			b.ClassEligibility, b.EscapedComputedClass = elig, escaped
			b.SnapshotIndex = e.SnapshotIndex
			b.FailedTGAllocs = r.failed
			if err := planner.ReblockEval(b); err != nil {
				return fmt.Errorf("reblock eval: %w", err)
			}
			return nil
		}
		b := newEval(cfg, eval, eval.Namespace, eval.JobID, structs.EvalTriggerQueuedAllocs)
		b.Status = structs.EvalStatusBlocked
		b.StatusDescription = "created to place remaining allocations"
		b.JobModifyIndex = s.job.JobModifyIndex
		b.Priority = s.job.Priority
		b.ClassEligibility, b.EscapedComputedClass = elig, escaped
		b.SnapshotIndex = e.SnapshotIndex
		if err := planner.CreateEval(b); err != nil {
			return fmt.Errorf("create blocked eval: %w", err)
		}
		e.BlockedEval = b.ID
	}
	return planner.UpdateEval(e)
}

// classEligibility reports, per node class seen, whether the failed groups
// could run there, and whether any group's feasibility escapes classes.
func classEligibility(s *schedCtx, r *attemptResult) (map[string]bool, bool) {
	elig := map[string]bool{}
	escaped := false
	for tg := range r.failed {
		ask := r.asks[tg]
		if ask == nil {
			continue
		}
		if ask.escaped || len(ask.distinctProps) > 0 {
			escaped = true
		}
		for class, reason := range ask.feasible {
			if strings.HasPrefix(class, unclassedPrefix) {
				escaped = true
				continue
			}
			if reason == filterOutOfScope {
				reason = "x"
			}
			elig[class] = elig[class] || reason == ""
		}
	}
	return elig, escaped
}

// compute is one planning attempt of the service and batch scheduler.
func (g *genericScheduler) compute(s *schedCtx) (map[string]*tgAsk, map[string]*structs.AllocMetric, map[string]int, error) {
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
	asks := make(map[string]*tgAsk, len(s.job.TaskGroups))
	queued := make(map[string]int, len(s.job.TaskGroups))
	for _, tg := range s.job.TaskGroups {
		asks[tg.Name] = newTGAsk(s.job, tg)
		queued[tg.Name] = 0
	}
	places, follow := s.reconcileGeneric(allocs, asks)
	s.createFollowups(follow)

	failed := map[string]*structs.AllocMetric{}
	preempt := s.preemptionEnabled()
	for _, p := range places {
		tg := p.ask.tg.Name
		if m := failed[tg]; m != nil {
			m.CoalescedFailures++
			queued[tg]++
			continue
		}
		a, metric := s.placeOne(p.ask, p.name, p.prev, placeOpts{penaltyNodes: p.avoid, preempt: preempt})
		if a == nil {
			failed[tg] = metric
			queued[tg]++
			continue
		}
		if p.stopPrev && p.prev != nil {
			s.stop(p.prev, descRescheduled, "")
		}
	}
	return asks, failed, queued, nil
}

// createFollowups creates one delayed evaluation per reschedule time and
// records it on the failed allocations waiting for it.
func (s *schedCtx) createFollowups(follow []followup) {
	if len(follow) == 0 {
		return
	}
	sort.SliceStable(follow, func(i, j int) bool { return follow[i].at.Before(follow[j].at) })
	var cur *structs.Evaluation
	var curAt time.Time
	for _, f := range follow {
		if cur == nil || !f.at.Equal(curAt) {
			cur = newEval(s.cfg, s.eval, s.job.Namespace, s.job.ID, structs.EvalTriggerRetryFailedAlloc)
			cur.Priority = s.job.Priority
			cur.Type = s.job.Type
			cur.JobModifyIndex = s.job.JobModifyIndex
			cur.WaitUntil = f.at
			curAt = f.at
			if err := s.planner.CreateEval(cur); err != nil && s.err == nil {
				s.err = fmt.Errorf("create follow-up eval: %w", err)
				return
			}
		}
		c := *f.alloc
		c.Job = nil
		c.FollowupEvalID = cur.ID
		c.ModifyTime = s.now()
		s.plan.AppendAlloc(&c)
	}
}
