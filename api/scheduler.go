package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth/structs"
)

// Plan asks the scheduler what it would do with job, without committing
// anything (PUT /v1/job/:id/plan). diff asks for the difference against
// the registered version too. The answer's JobModifyIndex is what to pass
// to RegisterOpts (EnforceIndex) so the job is only registered if nobody
// changed it since.
func (j *Jobs) Plan(job *structs.Job, diff bool, w *WriteOptions) (*structs.JobPlanResponse, *WriteMeta, error) {
	if job == nil || job.ID == "" {
		return nil, nil, fmt.Errorf("plan job: the job has no ID")
	}
	w = jobWriteOptions(job, w)
	req := &structs.JobPlanRequest{Job: job, Diff: diff}
	var out structs.JobPlanResponse
	wm, err := j.c.write(http.MethodPut, "/v1/job/"+pathEscape(job.ID)+"/plan", nil, req, &out, w)
	if err != nil {
		return nil, nil, err
	}
	return &out, wm, nil
}

// Evaluate forces a new evaluation of a job (PUT /v1/job/:id/evaluate).
func (j *Jobs) Evaluate(jobID string, opts structs.EvalOptions, w *WriteOptions) (*structs.JobRegisterResponse, *WriteMeta, error) {
	req := &structs.JobEvaluateRequest{JobID: jobID, EvalOptions: opts}
	var out structs.JobRegisterResponse
	wm, err := j.c.write(http.MethodPut, "/v1/job/"+pathEscape(jobID)+"/evaluate", nil, req, &out, w)
	if err != nil {
		return nil, nil, err
	}
	return &out, wm, nil
}

// RegisterCheckIndex registers job only if its JobModifyIndex is still
// index; index 0 means "only if the job does not exist yet". A mismatch is
// an error for which IsConflict is true.
func (j *Jobs) RegisterCheckIndex(job *structs.Job, index uint64, w *WriteOptions) (*structs.JobRegisterResponse, *WriteMeta, error) {
	return j.RegisterOpts(job, &RegisterOptions{EnforceIndex: true, ModifyIndex: index}, w)
}

// schedulerConfigResponse is Nomad's GET /v1/operator/scheduler/configuration.
type schedulerConfigResponse struct {
	SchedulerConfig *structs.SchedulerConfiguration
	structs.QueryMeta
}

// SchedulerGetConfiguration returns the cluster's scheduler configuration
// (GET /v1/operator/scheduler/configuration). It accepts Nomad's wrapped
// form ({"SchedulerConfig": {...}}) and a bare configuration.
func (o *Operator) SchedulerGetConfiguration(q *QueryOptions) (*structs.SchedulerConfiguration, *QueryMeta, error) {
	var raw json.RawMessage
	qm, err := o.c.query("/v1/operator/scheduler/configuration", &raw, q)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := decodeSchedulerConfig(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("GET /v1/operator/scheduler/configuration: %w", err)
	}
	return cfg, qm, nil
}

func decodeSchedulerConfig(raw json.RawMessage) (*structs.SchedulerConfiguration, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if _, ok := probe["SchedulerConfig"]; ok {
		var w schedulerConfigResponse
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
		if w.SchedulerConfig == nil {
			return nil, fmt.Errorf("decode response: no SchedulerConfig")
		}
		return w.SchedulerConfig, nil
	}
	var c structs.SchedulerConfiguration
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return &c, nil
}

// SchedulerSetConfigurationResponse answers a configuration change.
type SchedulerSetConfigurationResponse struct {
	// Updated is false when a check-and-set found a newer configuration.
	Updated bool
	Index   uint64
}

// SchedulerSetConfiguration replaces the scheduler configuration
// (PUT /v1/operator/scheduler/configuration).
func (o *Operator) SchedulerSetConfiguration(cfg *structs.SchedulerConfiguration, w *WriteOptions) (*SchedulerSetConfigurationResponse, *WriteMeta, error) {
	return o.schedulerSet(cfg, nil, w)
}

// SchedulerCASConfiguration replaces the configuration only if its
// ModifyIndex is still cfg.ModifyIndex (?cas=N); Updated says whether it
// did.
func (o *Operator) SchedulerCASConfiguration(cfg *structs.SchedulerConfiguration, w *WriteOptions) (*SchedulerSetConfigurationResponse, *WriteMeta, error) {
	return o.schedulerSet(cfg, url.Values{"cas": {strconv.FormatUint(cfg.ModifyIndex, 10)}}, w)
}

func (o *Operator) schedulerSet(cfg *structs.SchedulerConfiguration, params url.Values, w *WriteOptions) (*SchedulerSetConfigurationResponse, *WriteMeta, error) {
	if cfg == nil {
		return nil, nil, fmt.Errorf("set scheduler configuration: no configuration")
	}
	var out SchedulerSetConfigurationResponse
	wm, err := o.c.write(http.MethodPut, "/v1/operator/scheduler/configuration", params, cfg, &out, w)
	if err != nil {
		return nil, nil, err
	}
	if out.Index == 0 {
		out.Index = wm.LastIndex
	}
	return &out, wm, nil
}

// NodeEligibilityUpdateRequest is the body of PUT /v1/node/:id/eligibility.
type NodeEligibilityUpdateRequest struct {
	NodeID      string
	Eligibility string
}

// NodeEligibilityUpdateResponse answers an eligibility change; making a
// node eligible creates evaluations for the jobs that may now place there.
type NodeEligibilityUpdateResponse struct {
	EvalIDs         []string
	EvalCreateIndex uint64
	NodeModifyIndex uint64
	structs.QueryMeta
}

// ToggleEligibility marks a node eligible or ineligible for new placements
// (PUT /v1/node/:id/eligibility). Running allocations are not touched.
func (n *Nodes) ToggleEligibility(nodeID string, eligible bool, w *WriteOptions) (*NodeEligibilityUpdateResponse, *WriteMeta, error) {
	e := structs.NodeSchedulingIneligible
	if eligible {
		e = structs.NodeSchedulingEligible
	}
	req := &NodeEligibilityUpdateRequest{NodeID: nodeID, Eligibility: e}
	var out NodeEligibilityUpdateResponse
	wm, err := n.c.write(http.MethodPut, "/v1/node/"+pathEscape(nodeID)+"/eligibility", nil, req, &out, w)
	if err != nil {
		return nil, nil, err
	}
	return &out, wm, nil
}
