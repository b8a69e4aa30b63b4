package ctrtask

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/plugins/driver"
)

// Signal delivers a signal ("SIGHUP", "HUP", "1") to the task's init process.
func (r *Runtime) Signal(ctx context.Context, id, signal string) error {
	e, err := r.lookup(id)
	if err != nil {
		return err
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	if err := e.task.Kill(r.WithNamespace(ctx), sig); err != nil {
		return fmt.Errorf("signal task %s: %w", id, err)
	}
	return nil
}

// Stop sends signal (SIGTERM when empty), waits up to timeout for the exit,
// then kills every process of the task and waits for the exit.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration, signal string) error {
	e, err := r.lookup(id)
	if err != nil {
		return err
	}
	if e.exited() {
		return nil
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	nctx := r.WithNamespace(ctx)
	if err := e.task.Kill(nctx, sig); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
		return fmt.Errorf("stop task %s: signal: %w", id, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop task %s: %w", id, ctx.Err())
	case <-timer.C:
	}
	r.logger.Info("task did not stop in time, killing", "task_id", id, "timeout", timeout)
	return r.kill(ctx, e)
}

// kill sends SIGKILL to all of the task's processes and waits (bounded) for
// the exit.
func (r *Runtime) kill(ctx context.Context, e *entry) error {
	if err := e.task.Kill(r.WithNamespace(ctx), syscall.SIGKILL, containerd.WithKillAll); err != nil &&
		!errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
		return fmt.Errorf("kill task %s: %w", e.id, err)
	}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kill task %s: %w", e.id, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("kill task %s: no exit after SIGKILL", e.id)
	}
}

// Destroy deletes the task, the container and its snapshot. A running task
// is killed first with force, else it is an error. Destroy also cleans up a
// container this Runtime does not track (left by an earlier process).
func (r *Runtime) Destroy(ctx context.Context, id string, force bool) error {
	nctx := r.WithNamespace(ctx)
	e, err := r.lookup(id)
	if err != nil {
		return r.destroyUntracked(nctx, id, force)
	}
	if !e.exited() {
		if !force {
			return fmt.Errorf("destroy task %s: task is running", id)
		}
		if err := r.kill(ctx, e); err != nil {
			return fmt.Errorf("destroy task %s: %w", id, err)
		}
	}
	if err := r.deleteTask(nctx, e.shimGroup, e.container, e.task); err != nil {
		return fmt.Errorf("destroy task %s: delete task: %w", id, err)
	}
	if err := e.container.Delete(nctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("destroy task %s: delete container: %w", id, err)
	}
	r.forget(id)
	r.logger.Info("task destroyed", "task_id", id)
	return nil
}

func (r *Runtime) destroyUntracked(ctx context.Context, id string, force bool) error {
	cid := ContainerID(id)
	c, err := r.client.LoadContainer(ctx, cid)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("destroy task %s: %w", id, driver.ErrTaskNotFound)
		}
		return fmt.Errorf("destroy task %s: load container: %w", id, err)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		st, err := t.Status(ctx)
		if err == nil && st.Status == containerd.Running && !force {
			return fmt.Errorf("destroy task %s: task is running", id)
		}
		if err := r.deleteTask(ctx, shimGroupOf(ctx, c), c, t, containerd.WithProcessKill); err != nil {
			return fmt.Errorf("destroy task %s: delete task: %w", id, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("destroy task %s: delete container: %w", id, err)
	}
	return nil
}

// Inspect reports the task's state.
func (r *Runtime) Inspect(ctx context.Context, id string) (*driver.TaskStatus, error) {
	e, err := r.lookup(id)
	if err != nil {
		return nil, err
	}
	st := &driver.TaskStatus{
		ID: id, Name: e.containerID, State: driver.TaskStateRunning, StartedAt: e.startedAt,
		Attributes: map[string]string{
			"container_id": e.containerID,
			"pid":          fmt.Sprint(e.task.Pid()),
			"namespace":    r.namespace,
		},
	}
	if e.exited() {
		res := *e.result
		st.State, st.ExitResult, st.CompletedAt = driver.TaskStateExited, &res, e.exitedAt
		return st, nil
	}
	s, err := e.task.Status(r.WithNamespace(ctx))
	if err != nil {
		st.State = driver.TaskStateUnknown
		return st, nil
	}
	if s.Status == containerd.Stopped {
		st.State = driver.TaskStateExited
		st.CompletedAt = s.ExitTime
		st.ExitResult = &driver.ExitResult{ExitCode: int(s.ExitStatus)}
	}
	return st, nil
}
