package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"

	"github.com/berth-dev/berth/internal/containerdtest"
)

// ctdEvents records when containerd says each task started and exited:
// the ground truth for "running in containerd" and "the task exited",
// independent of what berth reports. Start times are the event
// envelopes' (taken by containerd when the shim reports the start); exit
// times are the shim's ExitedAt.
type ctdEvents struct {
	mu     sync.Mutex
	starts map[string]time.Time // container ID → task start
	exits  map[string]time.Time // container ID → task exit (shim's ExitedAt)
	pubs   map[string]time.Time // container ID → when containerd published the exit
	wake   chan struct{}        // closed and replaced on every event
}

func subscribeEvents(tb testing.TB, h *containerdtest.Harness) *ctdEvents {
	tb.Helper()
	ev := &ctdEvents{starts: map[string]time.Time{}, exits: map[string]time.Time{}, pubs: map[string]time.Time{}, wake: make(chan struct{})}
	ctx, cancel := context.WithCancel(h.Context(context.Background()))
	msgs, errs := h.Client().Subscribe(ctx,
		`namespace=="`+h.Namespace+`",topic=="/tasks/start"`,
		`namespace=="`+h.Namespace+`",topic=="/tasks/exit"`)
	done := make(chan struct{})
	tb.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case env := <-msgs:
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				ev.mu.Lock()
				switch e := v.(type) {
				case *eventtypes.TaskStart:
					ev.starts[e.ContainerID] = env.Timestamp
				case *eventtypes.TaskExit:
					// only the init process's exit ends the task
					if e.ID == e.ContainerID && e.ExitedAt != nil {
						ev.exits[e.ContainerID] = e.ExitedAt.AsTime()
						ev.pubs[e.ContainerID] = env.Timestamp
					}
				}
				close(ev.wake)
				ev.wake = make(chan struct{})
				ev.mu.Unlock()
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ev
}

// started waits up to timeout for the start of the container whose ID
// begins with prefix (berth names containers "<alloc ID>-<task>").
func (ev *ctdEvents) started(prefix string, timeout time.Duration) (time.Time, bool) {
	return ev.wait(ev.starts, prefix, timeout)
}

// exited is started for the task's exit.
func (ev *ctdEvents) exited(prefix string, timeout time.Duration) (time.Time, bool) {
	return ev.wait(ev.exits, prefix, timeout)
}

// exitPublished is when containerd published that exit.
func (ev *ctdEvents) exitPublished(prefix string, timeout time.Duration) (time.Time, bool) {
	return ev.wait(ev.pubs, prefix, timeout)
}

func (ev *ctdEvents) wait(m map[string]time.Time, prefix string, timeout time.Duration) (time.Time, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		ev.mu.Lock()
		for id, at := range m {
			if strings.HasPrefix(id, prefix) {
				ev.mu.Unlock()
				return at, true
			}
		}
		wake := ev.wake
		ev.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return time.Time{}, false
		}
	}
}
