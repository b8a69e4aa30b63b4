package allocrunner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/agent/allocdir"
	"github.com/berth-dev/berth/agent/state"
	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

// taskRunner runs one task: prestart hooks, the driver's start and wait,
// the restart policy, and the kill sequence. Its lifecycle gate (startCh)
// is opened by the alloc runner, which orders the group's tasks.
type taskRunner struct {
	ar     *AllocRunner
	name   string
	logger *slog.Logger

	mu     sync.Mutex
	task   *structs.Task
	state  *structs.TaskState
	handle *driver.TaskHandle
	// recovered is the handle loaded from the agent's state, tried once.
	recovered *driver.TaskHandle
	// driverName is the driver the running attempt uses.
	driverName string

	// Set by prestart hooks, for the attempt about to start.
	taskDir    *allocdir.TaskDir
	env        *taskenv.Env
	envExtra   map[string]string // from envvars templates
	stdoutPath string
	stderrPath string
	closers    []func() // undone when the task is dead (log readers)
	hookDone   map[string]bool
	// rendered is what the template hook rendered, with the files each
	// read, for the template watcher (template_watch.go) of the attempt.
	rendered *renderedTemplates

	// templatePoll is how often the template watcher polls (0: the
	// default); tests shorten it.
	templatePoll time.Duration
	// restartEv, when set, is the Restart Signaled event of the pending
	// restart (a template's); nil: a user asked for it.
	restartEv *structs.TaskEvent
	// watcher is the running attempt's template watcher (nil: none).
	watcher *templateWatcher

	hooks []prestartHook

	startCh   chan struct{} // closed by the alloc runner: the task may start
	startOnce sync.Once
	killCh    chan struct{} // closed to kill the task for good
	killOnce  sync.Once
	killEv    *structs.TaskEvent // why it is killed, shown before Killing
	restartCh chan struct{}      // a user-requested restart (not counted)
	// starting is set from the driver's StartTask until the task is
	// marked running: the process may already run (and be seen running by
	// a user), so a restart asked for then is queued, not refused.
	starting bool
	doneCh   chan struct{} // closed when Run returns

	restarts *restartTracker
	lastExit *driver.ExitResult
}

// prestartHook prepares something the task needs before each start. A
// hook may keep state in tr (hookDone) to do its work only once.
type prestartHook interface {
	Name() string
	Prestart(ctx context.Context, tr *taskRunner) error
}

// hookError marks a prestart failure that restarting cannot fix.
type hookError struct {
	event       string
	recoverable bool
	err         error
}

func (e *hookError) Error() string { return e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

func unrecoverable(event string, err error) error {
	return &hookError{event: event, err: err}
}
func recoverable(event string, err error) error {
	return &hookError{event: event, recoverable: true, err: err}
}

func newTaskRunner(ar *AllocRunner, task *structs.Task, jobType string) *taskRunner {
	tr := &taskRunner{
		ar:        ar,
		name:      task.Name,
		task:      task,
		logger:    ar.logger.With("task", task.Name),
		state:     &structs.TaskState{State: TaskStatePending},
		startCh:   make(chan struct{}),
		killCh:    make(chan struct{}),
		restartCh: make(chan struct{}, 1),
		doneCh:    make(chan struct{}),
		hookDone:  map[string]bool{},
	}
	policy := task.RestartPolicy
	if policy == nil {
		if tg := ar.group(); tg != nil {
			policy = tg.RestartPolicy
		}
	}
	tr.restarts = newRestartTracker(policy, jobType, ar.now)
	tr.hooks = []prestartHook{
		validateHook{}, netnsHook{}, taskDirHook{}, logHook{}, envHook{}, artifactHook{}, templateHook{},
	}
	return tr
}

// taskID is the driver's ID of the task: "<alloc-id>/<task>".
func (tr *taskRunner) taskID() string { return tr.ar.alloc().ID + "/" + tr.name }

func (tr *taskRunner) currentTask() *structs.Task {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.task
}

// snapshot returns a copy of the task's state.
func (tr *taskRunner) snapshot() *structs.TaskState {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return copyTaskState(tr.state)
}

// allowStart opens the lifecycle gate.
func (tr *taskRunner) allowStart() { tr.startOnce.Do(func() { close(tr.startCh) }) }

// kill asks the task to stop for good; ev (optional) says why.
func (tr *taskRunner) kill(ev *structs.TaskEvent) {
	tr.killOnce.Do(func() {
		tr.mu.Lock()
		tr.killEv = ev
		tr.mu.Unlock()
		close(tr.killCh)
	})
}

func (tr *taskRunner) killed() bool {
	select {
	case <-tr.killCh:
		return true
	default:
		return false
	}
}

// update records a state change: an optional event, an optional new state,
// and fn for other fields, then persists and tells the alloc runner.
func (tr *taskRunner) update(ev *structs.TaskEvent, newState string, fn func(st *structs.TaskState)) {
	tr.mu.Lock()
	if ev != nil {
		appendEvent(tr.state, ev)
	}
	if newState != "" {
		tr.state.State = newState
	}
	if fn != nil {
		fn(tr.state)
	}
	rec := &state.Task{Driver: tr.driverName, Handle: tr.handle, State: copyTaskState(tr.state)}
	tr.mu.Unlock()
	if err := tr.ar.cfg.State.PutTask(tr.ar.alloc().ID, tr.name, rec); err != nil {
		tr.logger.Error("persist task state", "error", err)
	}
	tr.ar.taskChanged()
}

func (tr *taskRunner) emit(ev *structs.TaskEvent) { tr.update(ev, "", nil) }

// run is the task's life. ctx ends when the agent shuts down: the runner
// then returns without touching the task, which keeps running for the next
// agent to recover.
func (tr *taskRunner) run(ctx context.Context) {
	defer close(tr.doneCh)
	if tr.snapshot().State == TaskStateDead {
		// restored after it ended; an agent that stopped between reporting
		// it dead and removing its container left the handle behind
		tr.destroyLeftover()
		return
	}
	select {
	case <-tr.startCh:
	case <-tr.killCh:
		tr.markDeadUnstarted()
		return
	case <-ctx.Done():
		return
	}
	var decision restartDecision
	pending := false // decision was made by the recovery path
	if tr.recovered != nil {
		ok, lost := tr.tryRecover(ctx)
		if !ok {
			return
		}
		if !lost {
			if stopped := tr.waitLoop(ctx); stopped {
				if ctx.Err() == nil {
					tr.finish(false)
				}
				return
			}
		}
		// it exited while recovered, or died while the agent was away:
		// the restart policy decides, as for any exit
		tr.mu.Lock()
		res := tr.lastExit
		tr.mu.Unlock()
		decision, pending = tr.restarts.onExit(res), true
	}
	if ctx.Err() != nil {
		return
	}
	for {
		if !pending {
			if tr.killed() {
				tr.finish(false)
				return
			}
			var stop bool
			decision, stop = tr.attempt(ctx)
			if ctx.Err() != nil {
				return
			}
			if stop {
				tr.finish(false)
				return
			}
		}
		pending = false
		if !decision.Restart {
			if decision.Failed {
				tr.emit(event(EventNotRestarting, tr.ar.now()).msg(decision.Reason).failsTask().build())
			}
			tr.finish(decision.Failed)
			return
		}
		if !tr.restartDelay(ctx, decision) {
			if ctx.Err() != nil {
				return
			}
			tr.finish(false)
			return
		}
	}
}

// attempt runs prestart hooks, starts the task and waits for it. stop says
// the task was killed; otherwise decision says what to do next.
func (tr *taskRunner) attempt(ctx context.Context) (decision restartDecision, stop bool) {
	if err := tr.prestart(ctx); err != nil {
		if ctx.Err() != nil || tr.killed() {
			return restartDecision{}, true
		}
		var he *hookError
		rec, evType := true, EventSetupFailure
		if errors.As(err, &he) {
			rec, evType = he.recoverable, he.event
		}
		ev := event(evType, tr.ar.now()).msg(err.Error())
		if !rec {
			ev.failsTask()
		}
		tr.emit(ev.build())
		tr.logger.Warn("task setup failed", "error", err)
		return tr.restarts.onStartError(rec), false
	}
	if err := tr.start(ctx); err != nil {
		if ctx.Err() != nil {
			return restartDecision{}, true
		}
		tr.emit(event(EventDriverFailure, tr.ar.now()).msg(err.Error()).build())
		tr.logger.Warn("task start failed", "error", err)
		return tr.restarts.onStartError(!errors.Is(err, errNoDriver)), false
	}
	if done := tr.waitLoop(ctx); done {
		return restartDecision{}, true
	}
	tr.mu.Lock()
	res := tr.lastExit
	tr.mu.Unlock()
	return tr.restarts.onExit(res), false
}

// restartDelay emits Restarting and waits out the delay; false when the
// task was killed (or the agent stopped) meanwhile.
func (tr *taskRunner) restartDelay(ctx context.Context, d restartDecision) bool {
	now := tr.ar.now()
	tr.update(event(EventRestarting, now).msg(fmt.Sprintf("Task restarting in %s", d.Delay)).
		detail("restart_reason", d.Reason).detail("start_delay", fmt.Sprint(int64(d.Delay))).build(),
		TaskStatePending, func(st *structs.TaskState) {
			st.Restarts++
			st.LastRestart = now
		})
	t := time.NewTimer(d.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-tr.killCh:
		return false
	case <-ctx.Done():
		return false
	}
}

func (tr *taskRunner) prestart(ctx context.Context) error {
	for _, h := range tr.hooks {
		if err := h.Prestart(ctx, tr); err != nil {
			return fmt.Errorf("%s: %w", h.Name(), err)
		}
	}
	return nil
}

var errNoDriver = errors.New("driver not available")

// driverConfig builds the driver's TaskConfig from the prestart results.
func (tr *taskRunner) driverConfig() (*driver.TaskConfig, error) {
	task := tr.currentTask()
	alloc := tr.ar.alloc()
	tr.mu.Lock()
	env, taskDir := tr.env, tr.taskDir
	cfg := &driver.TaskConfig{
		ID: tr.taskID(), AllocID: alloc.ID, TaskName: tr.name, JobID: alloc.JobID,
		TaskGroup: alloc.TaskGroup, Namespace: alloc.Namespace, Driver: task.Driver,
		User: task.User, StdoutPath: tr.stdoutPath, StderrPath: tr.stderrPath,
	}
	tr.mu.Unlock()
	raw, err := json.Marshal(env.ReplaceConfig(task.Config))
	if err != nil {
		return nil, unrecoverable(EventFailedValidation, fmt.Errorf("encode driver config: %w", err))
	}
	cfg.DriverConfig = raw
	cfg.Env = env.Map()
	cfg.AllocDir = tr.ar.allocDir.Dir
	cfg.SharedDir = tr.ar.allocDir.SharedDir
	cfg.TaskDir = taskDir.Dir
	cfg.Resources = taskResources(alloc, task)
	cfg.Ports = portMappings(alloc)
	tr.applyNetwork(cfg)
	return cfg, nil
}

// start asks the driver to start the task.
func (tr *taskRunner) start(ctx context.Context) error {
	task := tr.currentTask()
	d, err := tr.ar.cfg.Drivers(task.Driver)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", errNoDriver, task.Driver, err)
	}
	cfg, err := tr.driverConfig()
	if err != nil {
		return err
	}
	tr.emit(event(EventDriver, tr.ar.now()).msg("Starting task").build())
	tr.mu.Lock()
	tr.starting = true
	tr.mu.Unlock()
	h, err := d.StartTask(ctx, cfg)
	if err != nil {
		tr.mu.Lock()
		tr.starting = false
		tr.mu.Unlock()
		tr.dropRestartRequest() // it was for an attempt that never ran
		return fmt.Errorf("start task: %w", err)
	}
	now := tr.ar.now()
	tr.mu.Lock()
	tr.handle = h
	tr.driverName = task.Driver
	tr.mu.Unlock()
	tr.update(event(EventStarted, now).msg("Task started by client").build(), TaskStateRunning, func(st *structs.TaskState) {
		if st.StartedAt.IsZero() {
			st.StartedAt = now
		}
		st.FinishedAt = time.Time{}
		tr.starting = false // under tr.mu, with the state
	})
	tr.logger.Debug("task started")
	return nil
}

// markDeadUnstarted ends a task killed before it ever started.
func (tr *taskRunner) markDeadUnstarted() {
	tr.update(nil, TaskStateDead, func(st *structs.TaskState) {
		if st.FinishedAt.IsZero() {
			st.FinishedAt = tr.ar.now()
		}
	})
	tr.closeHooks()
}

// finish marks the task dead and reports it at once, then removes what
// the driver left behind and releases what the hooks opened. Reporting
// first keeps the container's removal (tens of milliseconds with
// containerd) out of the exit → complete latency; the alloc runner waits
// for every task runner to return, so the removal still happens before
// the network is torn down and before the alloc dir is removed.
// FinishedAt keeps the moment the exit was seen (exited, or Killed after
// a stop); only a task that never reported one gets now.
func (tr *taskRunner) finish(failed bool) {
	now := tr.ar.now()
	tr.mu.Lock()
	// a kill whose reason fails the task (a template's failed change
	// script) fails it, as in Nomad
	failed = failed || (tr.killEv != nil && tr.killEv.FailsTask)
	tr.mu.Unlock()
	tr.update(nil, TaskStateDead, func(st *structs.TaskState) {
		st.Failed = st.Failed || failed
		if st.FinishedAt.IsZero() {
			st.FinishedAt = now
		}
	})
	tr.destroyLeftover()
	tr.closeHooks()
}

// destroyLeftover asks the driver to remove the task's last attempt (its
// container); once that worked, the persisted record drops the handle so
// that an agent restarted later does not try again. A record that still
// has one after a crash is retried on restore (run).
func (tr *taskRunner) destroyLeftover() {
	tr.mu.Lock()
	h := tr.handle
	drvName := tr.driverName
	tr.mu.Unlock()
	if h == nil {
		return
	}
	d, err := tr.ar.cfg.Drivers(drvName)
	if err != nil {
		tr.logger.Warn("destroy task: driver unavailable", "error", err)
		return
	}
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.DestroyTask(dctx, h.Config.ID, true); err != nil && !errors.Is(err, driver.ErrTaskNotFound) {
		tr.logger.Warn("destroy task", "error", err)
		return
	}
	tr.mu.Lock()
	tr.handle = nil
	rec := &state.Task{Driver: tr.driverName, State: copyTaskState(tr.state)}
	tr.mu.Unlock()
	if err := tr.ar.cfg.State.PutTask(tr.ar.alloc().ID, tr.name, rec); err != nil {
		tr.logger.Error("persist task state", "error", err)
	}
}

func (tr *taskRunner) closeHooks() {
	tr.mu.Lock()
	closers := tr.closers
	tr.closers = nil
	tr.mu.Unlock()
	for _, c := range closers {
		c()
	}
}

// shutdownWait is for the agent shutting down: hooks release what they
// hold (log readers) but the task keeps running.
func (tr *taskRunner) shutdownRelease() { tr.closeHooks() }
