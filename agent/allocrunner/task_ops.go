package allocrunner

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/plugins/driver"
)

// ErrUnknownTask is returned for a task name the allocation does not have.
var ErrUnknownTask = errors.New("unknown task")

// ErrTaskNotRunning is returned for operations on a task that is not
// running.
var ErrTaskNotRunning = errors.New("task is not running")

// running returns the task's driver and ID while it runs.
func (ar *AllocRunner) running(task string) (*taskRunner, driver.Driver, string, error) {
	tr := ar.tasks[task]
	if tr == nil {
		return nil, nil, "", fmt.Errorf("%w: %q", ErrUnknownTask, task)
	}
	tr.mu.Lock()
	h, name, st := tr.handle, tr.driverName, tr.state.State
	tr.mu.Unlock()
	if h == nil || st != TaskStateRunning {
		return nil, nil, "", fmt.Errorf("%w: %q", ErrTaskNotRunning, task)
	}
	d, err := ar.cfg.Drivers(name)
	if err != nil {
		return nil, nil, "", err
	}
	return tr, d, h.Config.ID, nil
}

// Signal sends sig to task, or to every running task when task is empty.
func (ar *AllocRunner) Signal(ctx context.Context, task, sig string) error {
	names := []string{task}
	if task == "" {
		names = ar.runningTasks()
	}
	var errs []error
	for _, n := range names {
		tr, d, id, err := ar.running(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tr.emit(event(EventSignaling, ar.now()).msg("Task being sent a signal").detail("signal", sig).build())
		if err := d.SignalTask(ctx, id, sig); err != nil {
			errs = append(errs, fmt.Errorf("signal task %q: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Restart restarts task (every running task with all, or task empty)
// without counting against its restart policy.
func (ar *AllocRunner) Restart(ctx context.Context, task string, all bool) error {
	names := []string{task}
	if all || task == "" {
		names = ar.runningTasks()
	}
	var errs []error
	for _, n := range names {
		tr := ar.tasks[n]
		if tr == nil {
			errs = append(errs, fmt.Errorf("%w: %q", ErrUnknownTask, n))
			continue
		}
		if err := tr.requestRestart(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", ErrTaskNotRunning, err))
		}
	}
	return errors.Join(errs...)
}

// Exec runs a command in task.
func (ar *AllocRunner) Exec(ctx context.Context, task string, opts *driver.ExecOptions) (int, error) {
	_, d, id, err := ar.running(task)
	if err != nil {
		return 0, err
	}
	return d.ExecTask(ctx, id, opts)
}

// Stats samples every running task's usage.
func (ar *AllocRunner) Stats(ctx context.Context) (map[string]*driver.TaskResourceUsage, error) {
	out := map[string]*driver.TaskResourceUsage{}
	var errs []error
	for _, n := range ar.runningTasks() {
		_, d, id, err := ar.running(n)
		if err != nil {
			continue
		}
		u, err := d.TaskStats(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("stats of task %q: %w", n, err))
			continue
		}
		out[n] = u
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (ar *AllocRunner) runningTasks() []string {
	var out []string
	for _, n := range ar.order {
		if ar.tasks[n].snapshot().State == TaskStateRunning {
			out = append(out, n)
		}
	}
	return out
}

// RecoverTasks re-attaches every running task of the named drivers, after
// their plugin was relaunched.
func (ar *AllocRunner) RecoverTasks(ctx context.Context, drivers map[string]bool, d driver.Driver) {
	for name, tr := range ar.tasks {
		tr.mu.Lock()
		h, dn, st := tr.handle, tr.driverName, tr.state.State
		tr.mu.Unlock()
		if h == nil || st != TaskStateRunning || !drivers[dn] {
			continue
		}
		if err := d.RecoverTask(ctx, h); err != nil {
			ar.logger.Warn("recover task after plugin restart", "task", name, "error", err)
		}
	}
}
