package allocrunner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

// How long a task runner keeps retrying a driver whose plugin is gone
// before it gives the task up as lost.
const (
	pluginRetryEvery = 200 * time.Millisecond
	pluginRetryFor   = 2 * time.Minute
)

// tryRecover re-attaches to the task from the persisted handle; ok is
// false only when the agent stops meanwhile. A task that is gone (or
// whose driver stays unavailable) is recorded as exited and lost is set:
// the restart policy then decides, as for any exit.
func (tr *taskRunner) tryRecover(ctx context.Context) (ok, lost bool) {
	tr.mu.Lock()
	h := tr.recovered
	tr.recovered = nil
	name := tr.driverName
	tr.mu.Unlock()
	if name == "" {
		name = h.Config.Driver
	}
	deadline := time.Now().Add(pluginRetryFor)
	for {
		d, err := tr.ar.cfg.Drivers(name)
		if err == nil {
			err = d.RecoverTask(ctx, h)
		}
		tr.mu.Lock()
		tr.handle, tr.driverName = h, name
		tr.mu.Unlock()
		switch {
		case err == nil:
			tr.logger.Info("recovered task")
			// re-open the log readers on the same FIFOs
			if err := (logHook{}).Prestart(ctx, tr); err != nil {
				tr.logger.Warn("reattach task logs", "error", err)
			}
			return true, false
		case ctx.Err() != nil:
			return false, false
		case errors.Is(err, driver.ErrTaskNotFound), time.Now().After(deadline):
			tr.logger.Warn("task could not be recovered; the restart policy decides", "error", err)
			tr.exited(&driver.ExitResult{Err: "task not found after agent restart: " + err.Error()})
			return true, true
		}
		// the plugin may still be starting: retry until the deadline
		select {
		case <-ctx.Done():
			return false, false
		case <-time.After(pluginRetryEvery):
		}
	}
}

type waitResult struct {
	res *driver.ExitResult
	err error
}

// waitTask waits for the running attempt to exit, riding out a plugin
// restart: WaitTask errors other than ErrTaskNotFound are retried (the
// supervisor relaunches the plugin and recovers its tasks).
func (tr *taskRunner) waitTask(ctx context.Context) (*driver.ExitResult, error) {
	tr.mu.Lock()
	h, name := tr.handle, tr.driverName
	tr.mu.Unlock()
	deadline := time.Now().Add(pluginRetryFor)
	for {
		d, err := tr.ar.cfg.Drivers(name)
		var res *driver.ExitResult
		if err == nil {
			res, err = d.WaitTask(ctx, h.Config.ID)
		}
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, driver.ErrTaskNotFound) && d != nil {
			// the plugin was relaunched and has not recovered it yet
			if rerr := d.RecoverTask(ctx, h); rerr != nil && errors.Is(rerr, driver.ErrTaskNotFound) {
				return &driver.ExitResult{Err: "task lost: " + err.Error()}, nil
			}
		}
		if time.Now().After(deadline) {
			return &driver.ExitResult{Err: "driver unavailable: " + err.Error()}, nil
		}
		tr.logger.Debug("wait task failed, retrying", "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pluginRetryEvery):
		}
	}
}

// waitLoop waits for the running attempt while serving kills and
// user-requested restarts. It returns true when the task was killed (it is
// stopped; the caller finishes it) or the agent is shutting down.
func (tr *taskRunner) waitLoop(ctx context.Context) (stopped bool) {
	for {
		// re-renders templates while this attempt runs; stopped (and
		// waited for) before anything else happens to the attempt, so it
		// never acts on a stopping task nor renders during a prestart
		stopWatch := tr.watchTemplates(ctx)
		wctx, cancel := context.WithCancel(ctx)
		ch := make(chan waitResult, 1)
		go func() {
			res, err := tr.waitTask(wctx)
			ch <- waitResult{res, err}
		}()
		select {
		case r := <-ch:
			stopWatch()
			cancel()
			if r.err != nil {
				return true // ctx ended: agent shutdown
			}
			// the attempt ended by itself: the restart policy decides, and
			// a restart asked for meanwhile must not hit the next attempt
			tr.dropRestartRequest()
			tr.exited(r.res)
			return false
		case <-tr.killCh:
			stopWatch()
			tr.stopRunning(ctx, ch, true)
			cancel()
			return true
		case <-tr.restartCh:
			stopWatch()
			tr.stopRunning(ctx, ch, false)
			cancel()
			if ctx.Err() != nil || tr.killed() {
				return true
			}
			// restart at once, not counted against the policy
			now := tr.ar.now()
			tr.update(nil, TaskStatePending, func(st *structs.TaskState) {
				st.Restarts++
				st.LastRestart = now
				// another user restart meanwhile is queued, not refused
				tr.starting = true // under tr.mu
			})
			if err := tr.prestart(ctx); err == nil {
				err = tr.start(ctx)
				if err == nil {
					continue
				}
				tr.emit(event(EventDriverFailure, tr.ar.now()).msg(err.Error()).build())
			} else {
				tr.emit(event(EventSetupFailure, tr.ar.now()).msg(err.Error()).build())
			}
			tr.mu.Lock()
			tr.starting = false
			tr.lastExit = &driver.ExitResult{Err: "restart failed"}
			tr.mu.Unlock()
			tr.dropRestartRequest()
			return false
		case <-ctx.Done():
			stopWatch()
			cancel()
			<-ch
			return true
		}
	}
}

// exited records how the attempt ended.
func (tr *taskRunner) exited(res *driver.ExitResult) {
	now := tr.ar.now()
	msg := fmt.Sprintf("Exit Code: %d", res.ExitCode)
	if res.Signal != 0 {
		msg += fmt.Sprintf(", Signal: %d", res.Signal)
	}
	if res.OOMKilled {
		msg += ", OOM Killed"
	}
	if res.Err != "" {
		msg += ", Exit Message: " + res.Err
	}
	ev := event(EventTerminated, now).msg(msg).detail("exit_code", fmt.Sprint(res.ExitCode)).
		detail("signal", fmt.Sprint(res.Signal)).build()
	ev.ExitCode, ev.Signal = res.ExitCode, res.Signal
	tr.mu.Lock()
	tr.lastExit = res
	tr.mu.Unlock()
	tr.update(ev, "", func(st *structs.TaskState) { st.FinishedAt = now })
}

// stopRunning runs the kill sequence on the running attempt: the kill
// reason, shutdown_delay, Killing, StopTask (kill_signal, then a hard kill
// after kill_timeout), and Killed once it exited. forGood distinguishes a
// kill from a user restart (which only emits Restart Signaled).
func (tr *taskRunner) stopRunning(ctx context.Context, ch <-chan waitResult, forGood bool) {
	task := tr.currentTask()
	tr.mu.Lock()
	reason, h, name := tr.killEv, tr.handle, tr.driverName
	tr.mu.Unlock()
	timeout := task.KillTimeout
	if timeout <= 0 {
		timeout = structs.DefaultKillTimeout
	}
	if forGood {
		if reason != nil {
			tr.emit(reason)
		}
		if delay := tr.shutdownDelay(task); delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
		}
		ev := event(EventKilling, tr.ar.now()).msg(fmt.Sprintf("Sent interrupt. Waiting %s before force killing", timeout)).build()
		ev.KillTimeout = timeout
		tr.emit(ev)
	} else {
		tr.mu.Lock()
		ev := tr.restartEv
		tr.restartEv = nil
		tr.mu.Unlock()
		if ev == nil {
			ev = event(EventRestartSignal, tr.ar.now()).msg("User requested task to restart").build()
		}
		tr.emit(ev)
	}
	var stopErr error
	if d, err := tr.ar.cfg.Drivers(name); err != nil {
		stopErr = err
	} else {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+30*time.Second)
		stopErr = d.StopTask(sctx, h.Config.ID, timeout, task.KillSignal)
		cancel()
	}
	if stopErr != nil && !errors.Is(stopErr, driver.ErrTaskNotFound) {
		tr.logger.Warn("stop task", "error", stopErr)
	}
	var res *driver.ExitResult
	select {
	case r := <-ch:
		res = r.res
	case <-time.After(timeout + 10*time.Second):
		tr.logger.Warn("task did not report its exit after being stopped")
	}
	if res != nil {
		tr.mu.Lock()
		tr.lastExit = res
		tr.mu.Unlock()
	}
	if forGood {
		ev := event(EventKilled, tr.ar.now()).msg("Task successfully killed").build()
		if stopErr != nil && !errors.Is(stopErr, driver.ErrTaskNotFound) {
			ev.KillError = stopErr.Error()
		}
		tr.update(ev, "", func(st *structs.TaskState) { st.FinishedAt = tr.ar.now() })
	} else if res != nil {
		tr.exited(res)
	}
}

// shutdownDelay is the task's, or else its group's.
func (tr *taskRunner) shutdownDelay(task *structs.Task) time.Duration {
	if task.ShutdownDelay > 0 {
		return task.ShutdownDelay
	}
	if tg := tr.ar.group(); tg != nil {
		return tg.ShutdownDelay
	}
	return 0
}

// requestRestart asks for a user restart of the running task. A task
// whose driver is starting it counts as running: its process may already
// be up, and waitLoop serves the request as soon as it waits on it.
func (tr *taskRunner) requestRestart() error {
	tr.mu.Lock()
	ok := tr.state.State == TaskStateRunning || tr.starting
	tr.mu.Unlock()
	if !ok {
		return fmt.Errorf("task %q is not running", tr.name)
	}
	select {
	case tr.restartCh <- struct{}{}:
	default:
	}
	return nil
}

// dropRestartRequest forgets a restart asked for an attempt that is over.
func (tr *taskRunner) dropRestartRequest() {
	select {
	case <-tr.restartCh:
	default:
	}
	tr.mu.Lock()
	tr.restartEv = nil
	tr.mu.Unlock()
}
