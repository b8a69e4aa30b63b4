package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// jobPlan answers PUT /v1/job/:id/plan: what the scheduler would do with
// the candidate job, computed on a snapshot in which the candidate
// replaces the registered version. Nothing is committed.
func (s *Server) jobPlan(req *request, pathID string) (any, error) {
	var body structs.JobPlanRequest
	if err := decodeBody(req, &body); err != nil {
		return nil, err
	}
	job := body.Job
	if job == nil {
		return nil, badRequest("job is missing from the request body")
	}
	if pathID != "" && job.ID != pathID {
		return nil, badRequest("job ID %q does not match the request path %q", job.ID, pathID)
	}
	if job.Namespace == "" && req.namespace != structs.AllNamespacesSentinel {
		job.Namespace = req.namespace
	}
	if job.Region == "" {
		job.Region = s.config.Region
	}
	job.Canonicalize()
	if err := errors.Join(job.Validate(), validatePeriodic(job)); err != nil {
		return nil, badRequest("invalid job: %v", err)
	}
	if job.Region != s.config.Region {
		return nil, badRequest("job region %q is not this cluster's region %q", job.Region, s.config.Region)
	}

	snap := s.State().Snapshot()
	index := snap.LatestIndex()
	req.index = index
	ns, err := snap.NamespaceByName(nil, job.Namespace)
	if err != nil {
		return nil, err
	}
	if ns == nil {
		return nil, badRequest("namespace %q does not exist", job.Namespace)
	}
	existing, err := snap.JobByID(nil, job.Namespace, job.ID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	candidate := job.Copy()
	candidate.SubmitTime = now.UnixNano()
	txn := snap.Txn(true)
	if err := txn.UpsertJob(index+1, candidate); err != nil {
		txn.Abort()
		return nil, badRequest("invalid job: %v", err)
	}
	txn.Commit()
	stored, err := snap.JobByID(nil, job.Namespace, job.ID)
	if err != nil {
		return nil, err
	}
	// The diff is against what registering would store; when the store
	// sees no change (same JobModifyIndex) there is none to show.
	diffTarget := stored
	if stored == nil || (existing != nil && stored.JobModifyIndex == existing.JobModifyIndex) {
		diffTarget = existing
	}
	if diffTarget == nil {
		diffTarget = job
	}

	resp := &structs.JobPlanResponse{Index: index}
	if existing != nil {
		resp.JobModifyIndex = existing.JobModifyIndex
	}
	if !needsEvaluation(job) {
		if body.Diff {
			resp.Diff = planDiff(existing, diffTarget, nil)
		}
		return resp, nil
	}
	eval := &structs.Evaluation{
		ID:             generateUUID(),
		Namespace:      job.Namespace,
		Priority:       job.Priority,
		Type:           job.Type,
		TriggeredBy:    structs.EvalTriggerJobRegister,
		JobID:          job.ID,
		JobModifyIndex: stored.JobModifyIndex,
		Status:         structs.EvalStatusPending,
		AnnotatePlan:   true,
		CreateTime:     now.UnixNano(),
		ModifyTime:     now.UnixNano(),
	}
	view := newSnapshotState(snap, &s.nodeLists)
	planner := &dryRunPlanner{index: view.Index()}
	sched, err := scheduler.New(job.Type, scheduler.Config{
		Logger: s.baseLogger.With("component", "job_plan", "job_id", job.ID),
		Now:    time.Now,
		NewID:  generateUUID,
	}, view, planner)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if err := sched.Process(eval); err != nil {
		return nil, err
	}
	if planner.plan != nil {
		resp.Annotations = planner.plan.Annotations
	}
	if planner.eval != nil {
		resp.FailedTGAllocs = planner.eval.FailedTGAllocs
	}
	resp.CreatedEvals = planner.created
	if body.Diff {
		resp.Diff = planDiff(existing, diffTarget, resp.Annotations)
	}
	return resp, nil
}

// dryRunPlanner records what a scheduler would do, committing nothing:
// every plan "commits" in full.
type dryRunPlanner struct {
	index   uint64
	plan    *structs.Plan
	eval    *structs.Evaluation
	created []*structs.Evaluation
}

func (p *dryRunPlanner) SubmitPlan(plan *structs.Plan) (*structs.PlanResult, scheduler.State, error) {
	if p.plan == nil {
		p.plan = plan
	} else if plan.Annotations != nil {
		p.plan.Annotations = plan.Annotations
	}
	return &structs.PlanResult{
		NodeUpdate:      plan.NodeUpdate,
		NodeAllocation:  plan.NodeAllocation,
		NodePreemptions: plan.NodePreemptions,
		AllocIndex:      p.index + 1,
	}, nil, nil
}

func (p *dryRunPlanner) UpdateEval(e *structs.Evaluation) error {
	p.eval = e
	return nil
}

func (p *dryRunPlanner) CreateEval(e *structs.Evaluation) error {
	p.created = append(p.created, e)
	return nil
}

func (p *dryRunPlanner) ReblockEval(e *structs.Evaluation) error { return nil }

// planDiff is the field-level diff from the registered version to the
// candidate, each task group carrying the scheduler's intended updates.
func planDiff(existing, job *structs.Job, ann *structs.PlanAnnotations) *structs.JobDiff {
	d := structs.DiffJobs(existing, job)
	if ann == nil {
		return d
	}
	for _, tg := range d.TaskGroups {
		if u := ann.DesiredTGUpdates[tg.Name]; u != nil {
			if m := desiredUpdateCounts(u); len(m) > 0 {
				tg.Updates = m
			}
		}
	}
	return d
}

func desiredUpdateCounts(u *structs.DesiredUpdates) map[string]uint64 {
	m := map[string]uint64{}
	for k, v := range map[string]uint64{
		"ignore": u.Ignore, "create": u.Place, "migrate": u.Migrate, "destroy": u.Stop,
		"in-place update": u.InPlaceUpdate, "create/destroy update": u.DestructiveUpdate,
		"canary": u.Canary, "preemptions": u.Preemptions,
	} {
		if v > 0 {
			m[k] = v
		}
	}
	return m
}

// jobEvaluate answers PUT /v1/job/:id/evaluate: a new evaluation of the
// registered job.
func (s *Server) jobEvaluate(req *request, id string) (any, error) {
	var body structs.JobEvaluateRequest
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	// the body is optional
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			return nil, badRequest("failed to parse JSON body: %v", err)
		}
	}
	if body.JobID != "" && body.JobID != id {
		return nil, badRequest("job ID %q does not match the request path %q", body.JobID, id)
	}
	job, err := s.State().JobByID(nil, req.namespace, id)
	if err != nil {
		return nil, err
	}
	if job == nil {
		return nil, notFound("job not found")
	}
	if job.IsPeriodic() {
		return nil, badRequest("can't evaluate periodic job")
	}
	if job.IsParameterized() {
		return nil, badRequest("can't evaluate parameterized job")
	}
	now := time.Now().UnixNano()
	eval := s.newEval(job, structs.EvalTriggerJobRegister, job.Priority, now)
	eval.JobModifyIndex = job.JobModifyIndex
	var index uint64
	if body.EvalOptions.ForceReschedule {
		index, err = s.forceReschedule(job, eval, now)
	} else {
		index, _, err = s.raftApply(fsm.EvalUpsertType, &fsm.EvalUpsertCommand{Evals: []*structs.Evaluation{eval}})
	}
	if err != nil {
		return nil, err
	}
	req.index = index
	resp := &structs.JobRegisterResponse{EvalID: eval.ID, EvalCreateIndex: index, JobModifyIndex: job.JobModifyIndex}
	resp.Index, resp.KnownLeader = index, true
	return resp, nil
}

// forceReschedule marks every failed allocation of the job that has not
// been replaced yet with DesiredTransition.ForceReschedule, in the same
// Raft entry as the evaluation, so the scheduler replaces them now,
// whatever their reschedule policy (Nomad's `job eval -force-reschedule`).
func (s *Server) forceReschedule(job *structs.Job, eval *structs.Evaluation, now int64) (uint64, error) {
	allocs, err := s.State().AllocsByJob(nil, job.Namespace, job.ID)
	if err != nil {
		return 0, fmt.Errorf("force reschedule: %w", err)
	}
	yes := true
	transitions := make(map[string]*structs.DesiredTransition)
	for _, a := range allocs {
		if a.ClientStatus == structs.AllocClientStatusFailed && a.NextAllocation == "" &&
			a.DesiredStatus == structs.AllocDesiredStatusRun && !a.DesiredTransition.ShouldForceReschedule() {
			transitions[a.ID] = &structs.DesiredTransition{ForceReschedule: &yes}
		}
	}
	if len(transitions) == 0 {
		index, _, err := s.raftApply(fsm.EvalUpsertType, &fsm.EvalUpsertCommand{Evals: []*structs.Evaluation{eval}})
		return index, err
	}
	index, _, err := s.raftApply(fsm.AllocUpdateDesiredTransitionType, &fsm.AllocUpdateDesiredTransitionCommand{
		Allocs: transitions, Evals: []*structs.Evaluation{eval}, UpdatedAt: now,
	})
	return index, err
}
