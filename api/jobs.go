package api

import (
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/structs"
)

// Jobs is the /v1/jobs and /v1/job/:id endpoint group.
type Jobs struct{ c *Client }

// Jobs returns the jobs endpoints.
func (c *Client) Jobs() *Jobs { return &Jobs{c: c} }

// RegisterOptions are the optional parts of a job registration.
type RegisterOptions struct {
	// EnforceIndex makes the register a check-and-set on ModifyIndex
	// (0 means "the job must not exist").
	EnforceIndex   bool
	ModifyIndex    uint64
	PolicyOverride bool
	PreserveCounts bool
	EvalPriority   int
}

// Register submits a job (PUT /v1/jobs). The job's own namespace and region
// are used for the request unless w names others.
func (j *Jobs) Register(job *structs.Job, w *WriteOptions) (*structs.JobRegisterResponse, *WriteMeta, error) {
	return j.RegisterOpts(job, nil, w)
}

// RegisterOpts is Register with options.
func (j *Jobs) RegisterOpts(job *structs.Job, opts *RegisterOptions, w *WriteOptions) (*structs.JobRegisterResponse, *WriteMeta, error) {
	req := &structs.JobRegisterRequest{Job: job}
	if opts != nil {
		req.EnforceIndex = opts.EnforceIndex
		req.JobModifyIndex = opts.ModifyIndex
		req.PolicyOverride = opts.PolicyOverride
		req.PreserveCounts = opts.PreserveCounts
		req.EvalPriority = opts.EvalPriority
	}
	w = jobWriteOptions(job, w)
	req.Namespace, req.Region = w.Namespace, w.Region
	var resp structs.JobRegisterResponse
	wm, err := j.c.write(http.MethodPut, "/v1/jobs", nil, req, &resp, w)
	if err != nil {
		return nil, nil, err
	}
	return &resp, wm, nil
}

// jobWriteOptions fills the request namespace and region from the job when
// the caller gave none.
func jobWriteOptions(job *structs.Job, w *WriteOptions) *WriteOptions {
	var c WriteOptions
	if w != nil {
		c = *w
	}
	if job != nil {
		if c.Namespace == "" {
			c.Namespace = job.Namespace
		}
		if c.Region == "" {
			c.Region = job.Region
		}
	}
	return &c
}

// List returns the jobs (GET /v1/jobs); q.Prefix filters by ID prefix and
// q.Namespace "*" lists all namespaces.
func (j *Jobs) List(q *QueryOptions) ([]*structs.JobListStub, *QueryMeta, error) {
	var out []*structs.JobListStub
	qm, err := j.c.query("/v1/jobs", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}

// Info returns one job (GET /v1/job/:id).
func (j *Jobs) Info(jobID string, q *QueryOptions) (*structs.Job, *QueryMeta, error) {
	var out structs.Job
	qm, err := j.c.query("/v1/job/"+pathEscape(jobID), &out, q)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}

// Deregister stops a job (DELETE /v1/job/:id); purge also removes it from
// the state so that its ID can be reused from scratch.
func (j *Jobs) Deregister(jobID string, purge bool, w *WriteOptions) (*structs.JobDeregisterResponse, *WriteMeta, error) {
	params := url.Values{}
	if purge {
		params.Set("purge", "true")
	}
	var out structs.JobDeregisterResponse
	wm, err := j.c.write(http.MethodDelete, "/v1/job/"+pathEscape(jobID), params, nil, &out, w)
	if err != nil {
		return nil, nil, err
	}
	return &out, wm, nil
}

// Evaluations returns a job's evaluations (GET /v1/job/:id/evaluations).
func (j *Jobs) Evaluations(jobID string, q *QueryOptions) ([]*structs.Evaluation, *QueryMeta, error) {
	var out []*structs.Evaluation
	qm, err := j.c.query("/v1/job/"+pathEscape(jobID)+"/evaluations", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}

// Allocations returns a job's allocations (GET /v1/job/:id/allocations).
func (j *Jobs) Allocations(jobID string, q *QueryOptions) ([]*structs.AllocListStub, *QueryMeta, error) {
	var out []*structs.AllocListStub
	qm, err := j.c.query("/v1/job/"+pathEscape(jobID)+"/allocations", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}

// Summary returns a job's allocation counts (GET /v1/job/:id/summary).
func (j *Jobs) Summary(jobID string, q *QueryOptions) (*structs.JobSummary, *QueryMeta, error) {
	var out structs.JobSummary
	qm, err := j.c.query("/v1/job/"+pathEscape(jobID)+"/summary", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}
