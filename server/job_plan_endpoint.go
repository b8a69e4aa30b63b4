package server

import (
	"bytes"
	"encoding/json"
	"errors"
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
	unchanged := existing != nil && stored != nil && stored.JobModifyIndex == existing.JobModifyIndex

	resp := &structs.JobPlanResponse{Index: index}
	if existing != nil {
		resp.JobModifyIndex = existing.JobModifyIndex
	}
	if !needsEvaluation(job) {
		if body.Diff {
			resp.Diff = coarseJobDiff(existing, job, unchanged, nil)
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
		resp.Diff = coarseJobDiff(existing, job, unchanged, resp.Annotations)
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

// jobDiff is the outline of Nomad's JobDiff berth fills in: whether the
// job is added, edited or unchanged and, per task group, the scheduler's
// intended updates. Field-level diffs are not computed.
type jobDiff struct {
	Type       string
	ID         string
	Fields     []any
	Objects    []any
	TaskGroups []*taskGroupDiff
}

type taskGroupDiff struct {
	Type    string
	Name    string
	Fields  []any
	Objects []any
	Tasks   []any
	Updates map[string]uint64
}

func coarseJobDiff(existing, job *structs.Job, unchanged bool, ann *structs.PlanAnnotations) *jobDiff {
	d := &jobDiff{ID: job.ID, Type: "Edited"}
	switch {
	case existing == nil:
		d.Type = "Added"
	case unchanged:
		d.Type = "None"
	}
	old := map[string]bool{}
	if existing != nil {
		for _, tg := range existing.TaskGroups {
			old[tg.Name] = true
		}
	}
	for _, tg := range job.TaskGroups {
		t := &taskGroupDiff{Name: tg.Name, Type: d.Type}
		if existing != nil && !old[tg.Name] {
			t.Type = "Added"
		}
		if ann != nil {
			if u := ann.DesiredTGUpdates[tg.Name]; u != nil {
				t.Updates = desiredUpdateCounts(u)
			}
		}
		d.TaskGroups = append(d.TaskGroups, t)
		delete(old, tg.Name)
	}
	if existing != nil {
		for _, tg := range existing.TaskGroups {
			if old[tg.Name] {
				d.TaskGroups = append(d.TaskGroups, &taskGroupDiff{Name: tg.Name, Type: "Deleted"})
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
	index, _, err := s.raftApply(fsm.EvalUpsertType, &fsm.EvalUpsertCommand{Evals: []*structs.Evaluation{eval}})
	if err != nil {
		return nil, err
	}
	req.index = index
	resp := &structs.JobRegisterResponse{EvalID: eval.ID, EvalCreateIndex: index, JobModifyIndex: job.JobModifyIndex}
	resp.Index, resp.KnownLeader = index, true
	return resp, nil
}
