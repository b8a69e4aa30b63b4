package agent

import (
	"context"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// updater batches allocation status changes to the servers: a change
// opens a short window (Config.UpdateBatchWindow, 20ms) in which further
// changes of any allocation coalesce, then one PUT carries the latest
// state of each. Failed sends are retried with backoff.
type updater struct {
	a     *Agent
	mu    sync.Mutex
	dirty map[string]bool
	wake  chan struct{}
}

func newUpdater(a *Agent) *updater {
	return &updater{a: a, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// changed marks an allocation as needing an update (never blocks).
func (u *updater) changed(allocID string) {
	u.mu.Lock()
	u.dirty[allocID] = true
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *updater) take() map[string]bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	d := u.dirty
	u.dirty = map[string]bool{}
	return d
}

func (u *updater) loop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-u.a.registered:
	}
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.wake:
		}
		sleepCtx(ctx, u.a.cfg.UpdateBatchWindow)
		ids := u.take()
		if len(ids) == 0 {
			continue
		}
		batch := u.a.snapshots(ids)
		if len(batch) == 0 {
			continue
		}
		err := u.a.call(func(c *api.ClientNodes) error {
			_, err := c.UpdateAllocations(u.a.secret, batch, (&api.WriteOptions{}).WithContext(ctx))
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			u.a.logger.Warn("allocation status update failed, retrying", "allocs", len(batch), "error", err)
			for id := range ids {
				u.changed(id)
			}
			sleepCtx(ctx, backoff.next())
			continue
		}
		backoff.reset()
	}
}

// snapshots builds the trimmed updates of the given allocations.
func (a *Agent) snapshots(ids map[string]bool) []*structs.Allocation {
	a.runnersMu.Lock()
	defer a.runnersMu.Unlock()
	now := time.Now().UnixNano()
	var out []*structs.Allocation
	for id := range ids {
		r := a.runners[id]
		if r == nil {
			continue
		}
		full := r.ar.Alloc()
		out = append(out, &structs.Allocation{
			ID: full.ID, NodeID: full.NodeID, JobID: full.JobID, Namespace: full.Namespace, TaskGroup: full.TaskGroup,
			ClientStatus: full.ClientStatus, ClientDescription: full.ClientDescription,
			TaskStates: full.TaskStates, ModifyTime: now,
		})
	}
	return out
}
