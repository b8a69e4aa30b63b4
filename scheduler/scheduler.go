// Package scheduler decides where allocations run. It is pure: a read-only
// State snapshot and an evaluation go in, a Plan goes out through the
// Planner. It does no I/O, reads no clock but the one it is given, and
// starts no goroutines, so it is easy to test and to benchmark.
package scheduler

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/berth-dev/berth/structs"
)

// State is the read-only view of the cluster a scheduler plans on: a
// point-in-time snapshot. Returned objects must not be modified.
type State interface {
	// Nodes returns every node (the scheduler filters by status,
	// eligibility, pool and datacenter itself).
	Nodes() ([]*structs.Node, error)
	NodeByID(id string) (*structs.Node, error)
	JobByID(namespace, id string) (*structs.Job, error)
	AllocsByJob(namespace, jobID string) ([]*structs.Allocation, error)
	AllocsByNode(nodeID string) ([]*structs.Allocation, error)
	AllocByID(id string) (*structs.Allocation, error)
	SchedulerConfig() (*structs.SchedulerConfiguration, error)
	// Index is the Raft index the snapshot is current as of.
	Index() uint64
}

// Planner is how a scheduler acts: submit plans, update and create
// evaluations. The server's worker implements it; tests use a harness.
type Planner interface {
	// SubmitPlan hands a plan to the plan applier. When only part of it was
	// committed, the result's RefreshIndex is set and the returned State is
	// a newer snapshot to plan on again.
	SubmitPlan(*structs.Plan) (*structs.PlanResult, State, error)
	// UpdateEval records the evaluation's outcome (status, metrics,
	// blocked/next eval links).
	UpdateEval(*structs.Evaluation) error
	// CreateEval creates a follow-up evaluation (delayed reschedule).
	CreateEval(*structs.Evaluation) error
	// ReblockEval puts a blocked evaluation back into the blocked set.
	ReblockEval(*structs.Evaluation) error
}

// Scheduler processes one evaluation.
type Scheduler interface {
	Process(*structs.Evaluation) error
}

// Config is what every scheduler is built with.
type Config struct {
	Logger *slog.Logger
	// Now is the clock for reschedule delays and timestamps in the plan.
	Now func() time.Time
	// NewID makes IDs for new allocations and evaluations.
	NewID func() string
}

// Factory builds a scheduler for one evaluation.
type Factory func(cfg Config, state State, planner Planner) Scheduler

// factories maps a job type to its scheduler; each scheduler file
// registers itself.
var factories = map[string]Factory{}

func registerFactory(jobType string, f Factory) {
	if _, dup := factories[jobType]; dup {
		panic(fmt.Sprintf("scheduler: %s registered twice", jobType))
	}
	factories[jobType] = f
}

// New returns the scheduler for an evaluation's type (the job type).
func New(evalType string, cfg Config, state State, planner Planner) (Scheduler, error) {
	f, ok := factories[evalType]
	if !ok {
		return nil, fmt.Errorf("no scheduler for evaluation type %q", evalType)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		return nil, fmt.Errorf("scheduler config needs a clock")
	}
	if cfg.NewID == nil {
		return nil, fmt.Errorf("scheduler config needs an ID source")
	}
	return f(cfg, state, planner), nil
}
