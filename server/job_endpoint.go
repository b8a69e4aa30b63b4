package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/cronexpr"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// splitJobPath splits "/v1/job/<id>[/<sub>]" into the job ID and the
// sub-resource, knowing that IDs may contain slashes.
func splitJobPath(rest string) (id, sub string) {
	for _, suffix := range []string{"/evaluations", "/allocations", "/summary", "/evaluate", "/plan"} {
		if strings.HasSuffix(rest, suffix) && len(rest) > len(suffix) {
			return strings.TrimSuffix(rest, suffix), strings.TrimPrefix(suffix, "/")
		}
	}
	return rest, ""
}

func (s *Server) jobList(req *request) (any, error) {
	var out []*structs.JobListStub
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		jobs, err := st.Jobs(ws, req.namespace, req.prefix)
		if err != nil {
			return 0, err
		}
		out = make([]*structs.JobListStub, 0, len(jobs))
		for _, j := range jobs {
			sum, err := st.JobSummary(ws, j)
			if err != nil {
				return 0, err
			}
			out = append(out, j.Stub(sum))
		}
		return queryIndex(ws, st, state.TableJobs, state.TableAllocs), nil
	})
	return out, err
}

func (s *Server) jobRead(req *request) (any, error) {
	id, sub := splitJobPath(req.PathValue("rest"))
	if id == "" {
		return nil, badRequest("missing job ID")
	}
	var out any
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		out = nil
		switch sub {
		case "":
			job, err := st.JobByID(ws, req.namespace, id)
			if job != nil {
				out = job
			}
			return queryIndex(ws, st, state.TableJobs), err
		case "summary":
			job, err := st.JobByID(ws, req.namespace, id)
			if err != nil || job == nil {
				return queryIndex(ws, st, state.TableJobs), err
			}
			out, err = st.JobSummary(ws, job)
			return queryIndex(ws, st, state.TableJobs, state.TableAllocs), err
		case "evaluations":
			evals, err := st.EvalsByJob(ws, req.namespace, id)
			out = nonNil(evals)
			return queryIndex(ws, st, state.TableEvals), err
		case "allocations":
			allocs, err := st.AllocsByJob(ws, req.namespace, id)
			stubs := make([]*structs.AllocListStub, 0, len(allocs))
			for _, a := range allocs {
				stubs = append(stubs, a.Stub())
			}
			out = stubs
			return queryIndex(ws, st, state.TableAllocs), err
		}
		return 0, &codedError{code: http.StatusMethodNotAllowed, msg: "method GET not allowed on " + sub}
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, notFound("job not found")
	}
	return out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) jobWrite(req *request) (any, error) {
	id, sub := splitJobPath(req.PathValue("rest"))
	switch sub {
	case "":
		return s.registerJob(req, id)
	case "plan":
		return s.jobPlan(req, id)
	case "evaluate":
		return s.jobEvaluate(req, id)
	default:
		return nil, &codedError{code: http.StatusMethodNotAllowed, msg: req.Method + " not allowed on job " + sub}
	}
}

func (s *Server) jobRegister(req *request) (any, error) {
	return s.registerJob(req, "")
}

func (s *Server) registerJob(req *request, pathID string) (any, error) {
	var body structs.JobRegisterRequest
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
	if job.Namespace == "" {
		job.Namespace = body.Namespace
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
	ns, err := s.State().NamespaceByName(nil, job.Namespace)
	if err != nil {
		return nil, err
	}
	if ns == nil {
		return nil, badRequest("namespace %q does not exist", job.Namespace)
	}

	now := time.Now().UnixNano()
	job.SubmitTime = now
	cmd := &fsm.JobRegisterCommand{Job: job, EnforceIndex: body.EnforceIndex, JobModifyIndex: body.JobModifyIndex}
	if needsEvaluation(job) {
		priority := job.Priority
		if body.EvalPriority > 0 {
			priority = body.EvalPriority
		}
		cmd.Eval = s.newEval(job, structs.EvalTriggerJobRegister, priority, now)
	}
	index, res, err := s.raftApply(fsm.JobRegisterType, cmd)
	if err != nil {
		return nil, err
	}
	req.index = index
	resp := &structs.JobRegisterResponse{JobModifyIndex: index}
	if r, ok := res.(*fsm.JobRegisterResult); ok {
		resp.JobModifyIndex = r.JobModifyIndex
	}
	if cmd.Eval != nil {
		resp.EvalID, resp.EvalCreateIndex = cmd.Eval.ID, index
	}
	resp.Index, resp.KnownLeader = index, true
	return resp, nil
}

func (s *Server) jobDeregister(req *request) (any, error) {
	id, sub := splitJobPath(req.PathValue("rest"))
	if sub != "" {
		return nil, &codedError{code: http.StatusMethodNotAllowed, msg: "DELETE not allowed on job " + sub}
	}
	ns := req.namespace
	job, err := s.State().JobByID(nil, ns, id)
	if err != nil {
		return nil, err
	}
	if job == nil {
		return nil, notFound("job not found")
	}
	now := time.Now().UnixNano()
	cmd := &fsm.JobDeregisterCommand{
		Namespace:  ns,
		JobID:      id,
		Purge:      req.URL.Query().Get("purge") == "true",
		SubmitTime: now,
	}
	if needsEvaluation(job) {
		cmd.Eval = s.newEval(job, structs.EvalTriggerJobDeregister, job.Priority, now)
	}
	index, _, err := s.raftApply(fsm.JobDeregisterType, cmd)
	if err != nil {
		return nil, err
	}
	req.index = index
	resp := &structs.JobDeregisterResponse{JobModifyIndex: index}
	if cmd.Eval != nil {
		resp.EvalID, resp.EvalCreateIndex = cmd.Eval.ID, index
	}
	resp.Index, resp.KnownLeader = index, true
	return resp, nil
}

// newEval builds the evaluation that travels with a job change. Its ID and
// clock readings are chosen here, on the leader, never in the FSM.
func (s *Server) newEval(job *structs.Job, trigger string, priority int, now int64) *structs.Evaluation {
	return &structs.Evaluation{
		ID:          generateUUID(),
		Namespace:   job.Namespace,
		Priority:    priority,
		Type:        job.Type,
		TriggeredBy: trigger,
		JobID:       job.ID,
		Status:      structs.EvalStatusPending,
		CreateTime:  now,
		ModifyTime:  now,
	}
}

// needsEvaluation: periodic and parameterized jobs are templates; only
// their children are scheduled.
func needsEvaluation(job *structs.Job) bool {
	return !job.IsPeriodic() && !job.IsParameterized()
}

// validatePeriodic checks cron specs and time zones, which structs (stdlib
// only) cannot.
func validatePeriodic(job *structs.Job) error {
	p := job.Periodic
	if p == nil {
		return nil
	}
	var errs []error
	if p.SpecType == "" || p.SpecType == "cron" {
		for _, spec := range p.AllSpecs() {
			if _, err := cronexpr.Parse(spec); err != nil {
				errs = append(errs, fmt.Errorf("periodic: invalid cron spec %q: %v", spec, err))
			}
		}
	}
	if p.TimeZone != "" {
		if _, err := time.LoadLocation(p.TimeZone); err != nil {
			errs = append(errs, fmt.Errorf("periodic: invalid time zone %q: %v", p.TimeZone, err))
		}
	}
	return errors.Join(errs...)
}
