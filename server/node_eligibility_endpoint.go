package server

import (
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/structs"
)

// nodeEligibilityRequest is Nomad's NodeUpdateEligibilityRequest.
type nodeEligibilityRequest struct {
	NodeID      string
	Eligibility string
}

// nodeEligibilityResponse is Nomad's NodeEligibilityUpdateResponse.
type nodeEligibilityResponse struct {
	NodeModifyIndex uint64
	EvalIDs         []string
	EvalCreateIndex uint64
	Index           uint64
}

// nodeUpdateEligibility serves PUT /v1/node/{id}/eligibility. A node made
// eligible again gets node-update evaluations for the system jobs that
// may run on it.
func (s *Server) nodeUpdateEligibility(req *request) (any, error) {
	id := req.PathValue("id")
	var body nodeEligibilityRequest
	if err := decodeBody(req, &body); err != nil {
		return nil, err
	}
	if body.NodeID != "" && body.NodeID != id {
		return nil, badRequest("node ID %q does not match the request path %q", body.NodeID, id)
	}
	switch body.Eligibility {
	case structs.NodeSchedulingEligible, structs.NodeSchedulingIneligible:
	default:
		return nil, badRequest("invalid scheduling eligibility %q: want %q or %q",
			body.Eligibility, structs.NodeSchedulingEligible, structs.NodeSchedulingIneligible)
	}
	st := s.State()
	node, err := st.NodeByID(nil, id)
	if err != nil {
		return nil, err
	}
	if node == nil {
		return nil, notFound("node not found")
	}
	if body.Eligibility == structs.NodeSchedulingEligible && (node.Drain || node.DrainStrategy != nil) {
		return nil, badRequest("node %s is draining: it cannot be made eligible", id)
	}
	now := time.Now().UnixNano()
	cmd := &fsm.NodeUpdateEligibilityCommand{NodeID: id, Eligibility: body.Eligibility, UpdatedAt: now}
	if body.Eligibility == structs.NodeSchedulingEligible && node.SchedulingEligibility != structs.NodeSchedulingEligible {
		if cmd.Evals, err = nodeEvals(st, node, false, true, now); err != nil {
			return nil, err
		}
	}
	index, _, err := s.raftApply(fsm.NodeUpdateEligibilityType, cmd)
	if err != nil {
		return nil, err
	}
	req.index = index
	resp := &nodeEligibilityResponse{NodeModifyIndex: index, EvalIDs: []string{}, Index: index}
	for _, e := range cmd.Evals {
		resp.EvalIDs = append(resp.EvalIDs, e.ID)
	}
	if len(cmd.Evals) > 0 {
		resp.EvalCreateIndex = index
	}
	return resp, nil
}
