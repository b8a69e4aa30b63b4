package schedtest

import (
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// Harness is a scheduler.Planner over a State. It applies submitted plans
// the way the plan applier does: every node's resulting allocations must
// pass structs.AllocsFit (ports included), or that node's part of the plan
// is refused and RefreshIndex set.
type Harness struct {
	State *State
	Clock *Clock
	NewID func() string

	mu sync.Mutex
	// RejectNodes refuses placements on these nodes (partial commit), for
	// the next RejectPlans submissions (0: every submission).
	RejectNodes map[string]bool
	RejectPlans int
	// NoFitCheck skips the AllocsFit check.
	NoFitCheck bool

	Plans     []*structs.Plan
	Results   []*structs.PlanResult
	Evals     []*structs.Evaluation // UpdateEval calls
	Created   []*structs.Evaluation // CreateEval calls
	Reblocked []*structs.Evaluation
	// FitFailures records nodes refused because they did not fit.
	FitFailures []string
}

var _ scheduler.Planner = (*Harness)(nil)

// New returns a harness over a new state with a clock at a fixed time.
func New() *Harness {
	return &Harness{
		State: NewState(),
		Clock: NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)),
		NewID: IDs(""),
	}
}

// Config is a scheduler config using the harness' clock and IDs.
func (h *Harness) Config() scheduler.Config {
	return scheduler.Config{Now: h.Clock.Now, NewID: h.NewID}
}

// Process runs the scheduler for the evaluation.
func (h *Harness) Process(eval *structs.Evaluation) error {
	s, err := scheduler.New(eval.Type, h.Config(), h.State, h)
	if err != nil {
		return err
	}
	return s.Process(eval)
}

// NewEval returns a pending evaluation of the job.
func (h *Harness) NewEval(j *structs.Job, trigger string) *structs.Evaluation {
	return &structs.Evaluation{
		ID:             h.NewID(),
		Namespace:      j.Namespace,
		Priority:       j.Priority,
		Type:           j.Type,
		TriggeredBy:    trigger,
		JobID:          j.ID,
		JobModifyIndex: j.JobModifyIndex,
		Status:         structs.EvalStatusPending,
	}
}

// LastEval is the last evaluation update.
func (h *Harness) LastEval() *structs.Evaluation {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.Evals) == 0 {
		return nil
	}
	return h.Evals[len(h.Evals)-1]
}

// LastPlan is the last submitted plan.
func (h *Harness) LastPlan() *structs.Plan {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.Plans) == 0 {
		return nil
	}
	return h.Plans[len(h.Plans)-1]
}

// SubmitPlan implements scheduler.Planner.
func (h *Harness) SubmitPlan(p *structs.Plan) (*structs.PlanResult, scheduler.State, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Plans = append(h.Plans, p)
	reject := h.RejectNodes
	if h.RejectPlans > 0 {
		h.RejectPlans--
		if h.RejectPlans == 0 {
			h.RejectNodes = nil
		}
	}
	s := h.State
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.bump()
	result := &structs.PlanResult{
		NodeUpdate:      map[string][]*structs.Allocation{},
		NodeAllocation:  map[string][]*structs.Allocation{},
		NodePreemptions: map[string][]*structs.Allocation{},
		AllocIndex:      idx,
	}
	nodes := map[string]bool{}
	for n := range p.NodeUpdate {
		nodes[n] = true
	}
	for n := range p.NodeAllocation {
		nodes[n] = true
	}
	for n := range p.NodePreemptions {
		nodes[n] = true
	}
	refused := false
	for nodeID := range nodes {
		if reject[nodeID] && len(p.NodeAllocation[nodeID]) > 0 {
			refused = true
			continue
		}
		if !h.NoFitCheck && len(p.NodeAllocation[nodeID]) > 0 {
			if ok, dim := h.fits(p, nodeID); !ok {
				h.FitFailures = append(h.FitFailures, nodeID+": "+dim)
				refused = true
				continue
			}
		}
		for _, a := range p.NodeUpdate[nodeID] {
			h.applyUpdate(a, idx)
		}
		for _, a := range p.NodePreemptions[nodeID] {
			h.applyUpdate(a, idx)
		}
		for _, a := range p.NodeAllocation[nodeID] {
			c := *a
			c.Job = p.Job
			if old, ok := s.allocs[a.ID]; ok && c.AllocatedResources == nil {
				c.AllocatedResources = old.AllocatedResources
			}
			c.AllocModifyIndex = idx
			s.upsertAlloc(&c, idx)
			if c.PreviousAllocation != "" {
				if prev, ok := s.allocs[c.PreviousAllocation]; ok && prev.NextAllocation == "" {
					pc := *prev
					pc.NextAllocation = c.ID
					s.upsertAlloc(&pc, idx)
				}
			}
		}
		result.NodeUpdate[nodeID] = p.NodeUpdate[nodeID]
		result.NodeAllocation[nodeID] = p.NodeAllocation[nodeID]
		result.NodePreemptions[nodeID] = p.NodePreemptions[nodeID]
	}
	if refused {
		result.RefreshIndex = idx
	}
	h.Results = append(h.Results, result)
	return result, s, nil
}

// applyUpdate applies a stop or eviction from a plan to the stored alloc.
func (h *Harness) applyUpdate(a *structs.Allocation, idx uint64) {
	s := h.State
	old, ok := s.allocs[a.ID]
	if !ok {
		return
	}
	c := *old
	c.DesiredStatus = a.DesiredStatus
	c.DesiredDescription = a.DesiredDescription
	c.ClientStatus = a.ClientStatus
	c.PreemptedByAllocation = a.PreemptedByAllocation
	s.upsertAlloc(&c, idx)
}

// fits checks the node's allocations after the plan with AllocsFit.
func (h *Harness) fits(p *structs.Plan, nodeID string) (bool, string) {
	s := h.State
	i, ok := s.nodePos[nodeID]
	if !ok {
		return false, "node not found"
	}
	node := s.nodes[i]
	remove := map[string]bool{}
	for _, a := range p.NodeUpdate[nodeID] {
		remove[a.ID] = true
	}
	for _, a := range p.NodePreemptions[nodeID] {
		remove[a.ID] = true
	}
	var all []*structs.Allocation
	for _, a := range p.NodeAllocation[nodeID] {
		remove[a.ID] = true // updated in place: the plan's version counts
		all = append(all, a)
	}
	for _, a := range s.byNode[nodeID] {
		if !remove[a.ID] {
			all = append(all, a)
		}
	}
	fit, dim, _, err := structs.AllocsFit(node, all, true)
	if err != nil {
		return false, err.Error()
	}
	return fit, dim
}

// UpdateEval implements scheduler.Planner.
func (h *Harness) UpdateEval(e *structs.Evaluation) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Evals = append(h.Evals, e)
	return nil
}

// CreateEval implements scheduler.Planner.
func (h *Harness) CreateEval(e *structs.Evaluation) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.ID == "" {
		return fmt.Errorf("eval without ID")
	}
	h.Created = append(h.Created, e)
	return nil
}

// ReblockEval implements scheduler.Planner.
func (h *Harness) ReblockEval(e *structs.Evaluation) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Reblocked = append(h.Reblocked, e)
	return nil
}
