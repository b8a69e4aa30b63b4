// Package allocrunner runs one allocation on the agent: it builds the
// alloc dir, prepares the group's network through the network plugin
// (bridge and none modes, network_hook.go), runs one task runner per task
// in lifecycle order (prestart, main, poststart, poststop; sidecars;
// leader tasks), aggregates the tasks' states into the allocation's client
// status, and persists what it needs to re-attach to the tasks after an
// agent restart.
//
// A task runner is built from small prestart hooks (one <name>_hook.go
// each: validate, network, task dir, logs, env, artifacts, templates), the
// driver's start and wait, the restart policy (restarts.go) and the kill
// sequence (task_wait.go).
package allocrunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/agent/allocdir"
	"github.com/berth-dev/berth/agent/state"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// StateStore persists an allocation and its tasks (agent/state.DB).
type StateStore interface {
	PutAlloc(a *structs.Allocation) error
	PutTask(allocID, task string, t *state.Task) error
	DeleteAlloc(allocID string) error
}

// Config is what an alloc runner needs from the agent.
type Config struct {
	Alloc *structs.Allocation
	// Node is the agent's node (for the task env and interpolation).
	Node   *structs.Node
	Region string
	// AllocRoot is the directory the alloc dirs live in.
	AllocRoot string
	// Drivers returns the driver serving a driver name.
	Drivers func(name string) (driver.Driver, error)
	// Networks prepares bridge and none mode networks (network_hook.go);
	// nil: groups that ask for one fail.
	Networks Networks
	State    StateStore
	// OnChange is called (without blocking) whenever the allocation's
	// client status or a task's state changed.
	OnChange func(allocID string)
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// AllocRunner runs one allocation.
type AllocRunner struct {
	cfg      Config
	logger   *slog.Logger
	now      func() time.Time
	allocDir *allocdir.AllocDir

	mu      sync.Mutex
	a       *structs.Allocation
	tasks   map[string]*taskRunner
	order   []string // task names in the group's order
	stopped bool     // the servers asked to stop it

	netMu sync.Mutex
	net   *network.AllocNetwork // prepared network (network_hook.go)
	// netUsed: a network was (or may have been) created and must be
	// destroyed; netDestroyed: it was.
	netUsed, netDestroyed bool

	changeCh chan struct{} // a task's state changed (coalescing)
	killCh   chan struct{} // stop requested
	killOnce sync.Once
	ctx      context.Context // ends on agent shutdown
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	doneCh   chan struct{} // every task is dead
}

// New returns the runner of cfg.Alloc; nothing runs until Run.
func New(cfg Config) (*AllocRunner, error) {
	a := cfg.Alloc
	if a == nil || a.Job == nil {
		return nil, errors.New("alloc runner: allocation without job")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(string) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ar := &AllocRunner{
		cfg:      cfg,
		logger:   cfg.Logger.With("alloc_id", a.ID),
		now:      cfg.Now,
		allocDir: allocdir.New(cfg.AllocRoot, a.ID),
		a:        a,
		tasks:    map[string]*taskRunner{},
		changeCh: make(chan struct{}, 1),
		killCh:   make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		doneCh:   make(chan struct{}),
	}
	tg := ar.group()
	if tg == nil {
		cancel()
		return nil, fmt.Errorf("alloc runner: job %s has no group %q", a.JobID, a.TaskGroup)
	}
	for _, t := range tg.Tasks {
		tr := newTaskRunner(ar, t, a.Job.Type)
		ar.tasks[t.Name] = tr
		ar.order = append(ar.order, t.Name)
	}
	return ar, nil
}

// Restore gives the runner the persisted state of its tasks, before Run:
// tasks with a handle are recovered instead of started.
func (ar *AllocRunner) Restore(tasks map[string]*state.Task) {
	for name, rec := range tasks {
		tr := ar.tasks[name]
		if tr == nil || rec == nil {
			continue
		}
		tr.mu.Lock()
		if rec.State != nil {
			tr.state = copyTaskState(rec.State)
		}
		switch {
		case rec.Handle == nil:
		case tr.state.State != TaskStateDead:
			tr.recovered = rec.Handle
			tr.driverName = rec.Driver
		default:
			// dead, but its container may not have been removed (run)
			tr.handle = rec.Handle
			tr.driverName = rec.Driver
		}
		tr.mu.Unlock()
	}
}

func (ar *AllocRunner) alloc() *structs.Allocation {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	return ar.a
}

// group returns the allocation's task group in its current job.
func (ar *AllocRunner) group() *structs.TaskGroup {
	a := ar.alloc()
	for _, tg := range a.Job.TaskGroups {
		if tg != nil && tg.Name == a.TaskGroup {
			return tg
		}
	}
	return nil
}

// ID is the allocation's ID.
func (ar *AllocRunner) ID() string { return ar.alloc().ID }

// Run builds the alloc dir and starts the tasks in lifecycle order. It
// returns at once.
func (ar *AllocRunner) Run() {
	a := ar.alloc()
	if err := ar.cfg.State.PutAlloc(a); err != nil {
		ar.logger.Error("persist alloc", "error", err)
	}
	if err := ar.allocDir.Build(ar.order); err != nil {
		ar.logger.Error("build alloc dir", "error", err)
		for _, tr := range ar.tasks {
			tr.update(event(EventSetupFailure, ar.now()).msg(err.Error()).failsTask().build(), TaskStateDead,
				func(st *structs.TaskState) { st.Failed = true; st.FinishedAt = ar.now() })
		}
		close(ar.doneCh)
		return
	}
	for _, tr := range ar.tasks {
		if len(tr.snapshot().Events) == 0 {
			tr.emit(event(EventReceived, ar.now()).msg("Task received by client").build())
		}
	}
	for _, name := range ar.order {
		tr := ar.tasks[name]
		ar.wg.Add(1)
		go func() { defer ar.wg.Done(); tr.run(ar.ctx) }()
	}
	ar.wg.Add(1)
	go func() {
		defer ar.wg.Done()
		// the group's network exists before any task starts
		ar.prepareNetwork()
		ar.coordinate()
	}()
}

// taskChanged wakes the lifecycle coordinator and tells the agent.
func (ar *AllocRunner) taskChanged() {
	select {
	case ar.changeCh <- struct{}{}:
	default:
	}
	ar.cfg.OnChange(ar.ID())
}

// Update takes a new version of the allocation from the servers: a stop
// or evict kills its tasks; otherwise the new job applies from the tasks'
// next starts (in-place update).
func (ar *AllocRunner) Update(a *structs.Allocation) {
	ar.mu.Lock()
	old := ar.a
	merged := *a
	if merged.Job == nil {
		merged.Job = old.Job
	}
	ar.a = &merged
	ar.mu.Unlock()
	if tg := ar.group(); tg != nil {
		for _, t := range tg.Tasks {
			if tr := ar.tasks[t.Name]; tr != nil {
				tr.mu.Lock()
				tr.task = t
				tr.mu.Unlock()
			}
		}
	}
	if err := ar.cfg.State.PutAlloc(&merged); err != nil {
		ar.logger.Error("persist alloc", "error", err)
	}
	switch a.DesiredStatus {
	case structs.AllocDesiredStatusStop, structs.AllocDesiredStatusEvict:
		ar.Kill()
	}
}

// Kill stops every task (Nomad's order: the kill reaches all tasks that
// are not poststop, then poststop tasks run). It returns at once; WaitCh
// closes when all are dead.
func (ar *AllocRunner) Kill() {
	ar.killOnce.Do(func() {
		ar.mu.Lock()
		ar.stopped = true
		ar.mu.Unlock()
		close(ar.killCh)
	})
}

// WaitCh is closed once every task is dead.
func (ar *AllocRunner) WaitCh() <-chan struct{} { return ar.doneCh }

// Shutdown stops the runner's goroutines without touching the tasks,
// which keep running for the next agent to recover.
func (ar *AllocRunner) Shutdown() {
	ar.cancel()
	ar.wg.Wait()
	for _, tr := range ar.tasks {
		tr.shutdownRelease()
	}
}

// Destroy kills the tasks, waits for them (bounded), removes the alloc dir
// and forgets the allocation's state.
func (ar *AllocRunner) Destroy(timeout time.Duration) error {
	ar.Kill()
	select {
	case <-ar.doneCh:
	case <-time.After(timeout):
		// poststop tasks (or a stuck kill): kill every task directly
		ar.logger.Warn("tasks still running when destroying the allocation; killing all")
		for _, tr := range ar.tasks {
			tr.kill(nil)
		}
		select {
		case <-ar.doneCh:
		case <-time.After(30 * time.Second):
			ar.logger.Error("tasks did not stop; leaving them behind")
		}
	}
	ar.cancel()
	ar.wg.Wait()
	// the coordinator removed the network when the tasks died, unless the
	// plugin failed then (or the tasks never all died): try once more
	ar.teardownNetwork(context.Background())
	var errs []error
	if err := ar.allocDir.Destroy(); err != nil {
		errs = append(errs, fmt.Errorf("remove alloc dir: %w", err))
	}
	if err := ar.cfg.State.DeleteAlloc(ar.ID()); err != nil {
		errs = append(errs, fmt.Errorf("forget alloc: %w", err))
	}
	return errors.Join(errs...)
}

// Alloc returns a copy of the allocation with its current client status
// and task states (the update the agent sends).
func (ar *AllocRunner) Alloc() *structs.Allocation {
	ar.mu.Lock()
	c := *ar.a
	ar.mu.Unlock()
	c.TaskStates = ar.TaskStates()
	c.ClientStatus, c.ClientDescription = clientStatus(c.TaskStates)
	return &c
}

// TaskStates returns a copy of every task's state.
func (ar *AllocRunner) TaskStates() map[string]*structs.TaskState {
	out := make(map[string]*structs.TaskState, len(ar.tasks))
	for name, tr := range ar.tasks {
		out[name] = tr.snapshot()
	}
	return out
}

// TaskNames lists the group's tasks in order.
func (ar *AllocRunner) TaskNames() []string { return append([]string(nil), ar.order...) }

// LogDir is the allocation's log directory.
func (ar *AllocRunner) LogDir() string { return ar.allocDir.LogDir }

// AllocDir is the allocation's directory.
func (ar *AllocRunner) AllocDir() *allocdir.AllocDir { return ar.allocDir }

// Handles returns the driver name and handle of every task that has one
// (for recovering tasks after a plugin restart).
func (ar *AllocRunner) Handles() map[string]*driver.TaskHandle {
	out := map[string]*driver.TaskHandle{}
	for name, tr := range ar.tasks {
		tr.mu.Lock()
		if tr.handle != nil && tr.state.State == TaskStateRunning {
			out[name] = tr.handle
		}
		tr.mu.Unlock()
	}
	return out
}
