package fsm

import "github.com/berth-dev/berth/structs"

// Payloads of the scheduling commands. Their message types are declared in
// messages.go; the apply functions live in apply_plan.go, apply_alloc.go and
// apply_scheduler.go.

// ApplyPlanResultsCommand commits what the plan applier accepted of a
// plan, in one entry: placements and in-place updates, stops, preemptions,
// and evaluation changes that go with them.
type ApplyPlanResultsCommand struct {
	// Job is attached by the FSM to every placed allocation that has no
	// Job of its own, so it travels once per entry, not once per alloc.
	Job *structs.Job
	// AllocsUpdated are new or updated allocations (full objects, Job nil).
	AllocsUpdated []*structs.Allocation
	// AllocsStopped are stops: ID, DesiredStatus, DesiredDescription,
	// ClientStatus (lost, for allocs on down nodes) and FollowupEvalID.
	AllocsStopped []*structs.Allocation
	// AllocsPreempted are evictions: ID, DesiredStatus, DesiredDescription,
	// PreemptedByAllocation.
	AllocsPreempted []*structs.Allocation
	// EvalID is the evaluation the plan belongs to.
	EvalID string
	// Evals are evaluations created or updated with the plan (e.g. for
	// jobs whose allocations were preempted).
	Evals []*structs.Evaluation
	// UpdatedAt is the leader's clock at commit, for ModifyTime.
	UpdatedAt int64
}

// AllocClientUpdateCommand records agents' status reports, with the
// evaluations the leader created for allocations that failed.
type AllocClientUpdateCommand struct {
	Allocs    []*structs.Allocation
	Evals     []*structs.Evaluation
	UpdatedAt int64
}

// SchedulerConfigCommand sets the scheduler configuration.
type SchedulerConfigCommand struct {
	Config *structs.SchedulerConfiguration
	// CAS, when set, applies only if the stored ModifyIndex equals Index.
	CAS   bool
	Index uint64
}
