package server

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/structs"
)

// allocStopResponse is Nomad's AllocStopResponse.
type allocStopResponse struct {
	EvalID string
	Index  uint64
}

// allocStop serves PUT /v1/allocation/{id}/stop: as in Nomad the
// allocation is marked to migrate and its job evaluated, in one entry, so
// the scheduler stops it and places a replacement.
func (s *Server) allocStop(req *request) (any, error) {
	id := req.PathValue("id")
	st := s.State()
	alloc, err := st.AllocByID(nil, id)
	if err != nil {
		return nil, err
	}
	if alloc == nil {
		return nil, notFound("alloc not found")
	}
	job, err := allocJob(st, alloc)
	if err != nil {
		return nil, err
	}
	if job == nil {
		return nil, badRequest("allocation %s has no job to evaluate", id)
	}
	now := time.Now().UnixNano()
	yes := true
	eval := s.newEval(job, structs.EvalTriggerAllocStop, job.Priority, now)
	cmd := &fsm.AllocUpdateDesiredTransitionCommand{
		Allocs:    map[string]*structs.DesiredTransition{id: {Migrate: &yes}},
		Evals:     []*structs.Evaluation{eval},
		UpdatedAt: now,
	}
	index, _, err := s.raftApply(fsm.AllocUpdateDesiredTransitionType, cmd)
	if err != nil {
		return nil, fmt.Errorf("stop allocation %s: %w", id, err)
	}
	req.index = index
	return &allocStopResponse{EvalID: eval.ID, Index: index}, nil
}
