package fsm

import "github.com/berth-dev/berth/structs"

// Payloads of the drain and allocation-lifecycle commands (FSM version 2).
// Their types are declared in messages.go, applied in apply_drain.go.

// NodeUpdateDrainCommand starts, changes or ends a node's drain. A non-nil
// DrainStrategy starts or replaces the drain and makes the node ineligible;
// nil ends it, and MarkEligible then makes the node eligible again (a drain
// that completes leaves the node ineligible).
type NodeUpdateDrainCommand struct {
	NodeID        string
	DrainStrategy *structs.DrainStrategy `json:",omitempty"`
	MarkEligible  bool
	// NodeEvent, when set, is appended to the node's events.
	NodeEvent *structs.NodeEvent `json:",omitempty"`
	UpdatedAt int64
	// Evals are node-update evaluations created with the change.
	Evals []*structs.Evaluation `json:",omitempty"`
}

// AllocUpdateDesiredTransitionCommand sets desired transitions of
// allocations (Nomad's AllocUpdateDesiredTransitionRequest): the drainer
// marks allocations to migrate, `alloc stop` marks one. The evaluations
// that make the scheduler act on them travel in the same entry.
type AllocUpdateDesiredTransitionCommand struct {
	Allocs    map[string]*structs.DesiredTransition
	Evals     []*structs.Evaluation `json:",omitempty"`
	UpdatedAt int64
}
