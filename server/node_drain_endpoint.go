package server

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/structs"
)

// nodeDrainRequest is Nomad's NodeUpdateDrainRequest.
type nodeDrainRequest struct {
	NodeID       string
	DrainSpec    *structs.DrainSpec
	MarkEligible bool
	Meta         map[string]string
}

// nodeDrainResponse is Nomad's NodeDrainUpdateResponse.
type nodeDrainResponse struct {
	NodeModifyIndex uint64
	EvalIDs         []string
	EvalCreateIndex uint64
	Index           uint64
}

// Node event messages of drains, as Nomad words them.
const (
	drainEventSubsystem = "Drain"
	drainEventSet       = "Node drain strategy set"
	drainEventUpdated   = "Node drain strategy updated"
	drainEventCancelled = "Node drain disabled"
	drainEventComplete  = "Node drain complete"
)

// newDrainStrategy turns what the operator asked for into the stored
// strategy, with Nomad's deadline semantics: a negative deadline forces
// the drain now, zero means no deadline, a positive one is from now.
func newDrainStrategy(spec *structs.DrainSpec, now time.Time) *structs.DrainStrategy {
	ds := &structs.DrainStrategy{DrainSpec: *spec, StartedAt: now}
	switch {
	case spec.Deadline < 0:
		ds.Deadline = -1
		ds.ForceDeadline = now
	case spec.Deadline > 0:
		ds.ForceDeadline = now.Add(spec.Deadline)
	}
	return ds
}

// nodeUpdateDrain serves PUT /v1/node/{id}/drain: DrainSpec starts or
// changes a drain (the node becomes ineligible), none cancels it
// (MarkEligible makes the node eligible again). The drainer on the leader
// does the migrating.
func (s *Server) nodeUpdateDrain(req *request) (any, error) {
	id := req.PathValue("id")
	var body nodeDrainRequest
	if err := decodeBody(req, &body); err != nil {
		return nil, err
	}
	if body.NodeID != "" && body.NodeID != id {
		return nil, badRequest("node ID %q does not match the request path %q", body.NodeID, id)
	}
	st := s.State()
	node, err := st.NodeByID(nil, id)
	if err != nil {
		return nil, err
	}
	if node == nil {
		return nil, notFound("node not found")
	}
	now := time.Now()
	cmd := &fsm.NodeUpdateDrainCommand{NodeID: id, UpdatedAt: now.UnixNano()}
	event := &structs.NodeEvent{Subsystem: drainEventSubsystem, Timestamp: now, Details: body.Meta}
	if body.DrainSpec != nil {
		cmd.DrainStrategy = newDrainStrategy(body.DrainSpec, now)
		if old := node.DrainStrategy; old != nil {
			// a changed deadline counts from the original start
			cmd.DrainStrategy.StartedAt = old.StartedAt
			event.Message = drainEventUpdated
		} else {
			event.Message = drainEventSet
		}
		// the evaluations let the scheduler see the node is no longer a
		// place for new work; the drainer marks what must move
		if cmd.Evals, err = nodeEvals(st, node, true, false, now.UnixNano()); err != nil {
			return nil, err
		}
	} else {
		cmd.MarkEligible = body.MarkEligible
		event.Message = drainEventCancelled
		if body.MarkEligible && node.SchedulingEligibility != structs.NodeSchedulingEligible {
			if cmd.Evals, err = nodeEvals(st, node, false, true, now.UnixNano()); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range cmd.Evals {
		e.TriggeredBy = structs.EvalTriggerNodeDrain
	}
	cmd.NodeEvent = event
	index, _, err := s.raftApply(fsm.NodeUpdateDrainType, cmd)
	if err != nil {
		return nil, fmt.Errorf("update drain of node %s: %w", id, err)
	}
	req.index = index
	resp := &nodeDrainResponse{NodeModifyIndex: index, EvalIDs: []string{}, Index: index}
	for _, e := range cmd.Evals {
		resp.EvalIDs = append(resp.EvalIDs, e.ID)
	}
	if len(cmd.Evals) > 0 {
		resp.EvalCreateIndex = index
	}
	return resp, nil
}
