package ctrtask

import (
	"context"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/errdefs"
)

// Deleting a task of a shared shim. runc's shim exits once it serves no
// container: each task delete ends with a shutdown request that the shim
// honours when its container list is empty. Two deletes in one shim at
// once race: one task's shutdown can see the list empty while the
// other's delete is still being answered, and the shim exits under it
// ("ttrpc: closed"). So deletes, like creations, take the shim group's
// lock; and a delete that fails anyway is retried on a fresh handle of
// the task, which is gone (not found) once containerd has cleaned up
// after a shim that exited.

const (
	deleteAttempts = 3
	deleteBackoff  = 200 * time.Millisecond
)

// deleteTask deletes t, the task of c, in shim group group ("" : none).
// A task already gone is not an error.
func (r *Runtime) deleteTask(ctx context.Context, group string, c containerd.Container, t containerd.Task, opts ...containerd.ProcessDeleteOpts) error {
	unlock := r.lockShimGroup(group)
	defer unlock()
	for attempt := 1; ; attempt++ {
		_, err := t.Delete(ctx, opts...)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if attempt == deleteAttempts {
			return err
		}
		timer := time.NewTimer(time.Duration(attempt) * deleteBackoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		fresh, lerr := c.Task(ctx, nil)
		if errdefs.IsNotFound(lerr) {
			return nil
		}
		if lerr == nil {
			t = fresh
		}
		r.logger.Warn("task delete failed, retrying", "container_id", c.ID(), "attempt", attempt, "error", err)
	}
}

// shimGroupOf reads the shim group of a container this Runtime does not
// track from its spec ("" when it has none or the spec is unreadable).
func shimGroupOf(ctx context.Context, c containerd.Container) string {
	spec, err := c.Spec(ctx)
	if err != nil || spec == nil {
		return ""
	}
	return spec.Annotations[ShimGroupAnnotation]
}
