package fsm

import "github.com/berth-dev/berth/structs"

// The payloads of the commands. Everything Apply needs travels here,
// including clock readings and IDs chosen by the leader.

// JobRegisterCommand registers a job and its evaluation in one entry.
type JobRegisterCommand struct {
	Job  *structs.Job
	Eval *structs.Evaluation `json:",omitempty"`
	// EnforceIndex makes the register a check-and-set on JobModifyIndex
	// (0 meaning "only if the job does not exist").
	EnforceIndex   bool
	JobModifyIndex uint64
}

// JobRegisterResult is what applying a JobRegisterCommand returns.
type JobRegisterResult struct {
	JobModifyIndex uint64
}

// JobDeregisterCommand stops a job, or removes it when Purge is set.
type JobDeregisterCommand struct {
	Namespace  string
	JobID      string
	Purge      bool
	SubmitTime int64
	Eval       *structs.Evaluation `json:",omitempty"`
}

// EvalUpsertCommand creates or updates evaluations.
type EvalUpsertCommand struct {
	Evals []*structs.Evaluation
}

// EvalDeleteCommand removes evaluations.
type EvalDeleteCommand struct {
	EvalIDs []string
}

// AllocUpsertCommand creates or updates allocations.
type AllocUpsertCommand struct {
	Allocs []*structs.Allocation
}

// NodeRegisterCommand registers a node.
type NodeRegisterCommand struct {
	Node *structs.Node
	// Evals are node-update evaluations created with the registration
	// (system jobs to place on a node that became ready).
	Evals []*structs.Evaluation `json:",omitempty"`
}

// NodeDeregisterCommand removes nodes.
type NodeDeregisterCommand struct {
	NodeIDs []string
}

// NodeUpdateStatusCommand changes a node's status.
type NodeUpdateStatusCommand struct {
	NodeID    string
	Status    string
	UpdatedAt int64
	// Evals are the node-update evaluations the leader creates for every
	// job with allocations on the node, in the same entry.
	Evals []*structs.Evaluation `json:",omitempty"`
}

// NamespaceUpsertCommand creates or updates namespaces.
type NamespaceUpsertCommand struct {
	Namespaces []*structs.Namespace
}

// NamespaceDeleteCommand removes namespaces.
type NamespaceDeleteCommand struct {
	Names []string
}

// NodeUpdateEligibilityCommand makes a node eligible or ineligible for
// placements, with the evaluations that go with it.
type NodeUpdateEligibilityCommand struct {
	NodeID      string
	Eligibility string
	UpdatedAt   int64
	Evals       []*structs.Evaluation `json:",omitempty"`
}
