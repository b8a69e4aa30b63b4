package ctrtask

import (
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/events"
	"github.com/containerd/typeurl/v2"
)

// watchOOM records the containers the shim reports OOM events for, so
// awaitExit can tell an OOM kill from another SIGKILL. It resubscribes
// (bounded backoff) until the Runtime is closed.
func (r *Runtime) watchOOM() {
	backoff := 100 * time.Millisecond
	for r.ctx.Err() == nil {
		envC, errC := r.client.Subscribe(r.ctx, `topic=="/tasks/oom"`)
		r.consumeOOM(envC, errC)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (r *Runtime) consumeOOM(envC <-chan *events.Envelope, errC <-chan error) {
	for {
		select {
		case env := <-envC:
			if env == nil || env.Namespace != r.namespace || env.Event == nil {
				continue
			}
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			if oom, ok := v.(*eventtypes.TaskOOM); ok {
				r.mu.Lock()
				r.ooms[oom.ContainerID] = true
				r.mu.Unlock()
				r.logger.Warn("task hit its memory limit", "container_id", oom.ContainerID)
			}
		case err := <-errC:
			if err != nil && r.ctx.Err() == nil {
				r.logger.Debug("event subscription ended", "error", err)
			}
			return
		case <-r.ctx.Done():
			return
		}
	}
}
