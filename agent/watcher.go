package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/agent/allocrunner"
	"github.com/berth-dev/berth/agent/state"
	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// destroyTimeout bounds how long a garbage-collected allocation's tasks
// get to stop before its directory is removed anyway.
const destroyTimeout = 2 * time.Minute

// watchLoop holds a blocking query on the stubs of the node's allocations
// (IDs, indexes, statuses) and fetches the allocations whole, with their
// jobs, only when the stubs show a change the runners have not seen: a new
// allocation, a server-side change (AllocModifyIndex, desired status) or
// one that is gone. Most answers are woken by the agent's own status
// updates, which change none of these, so starting N allocations costs N
// small stubs per answer instead of N allocations with their jobs.
func (a *Agent) watchLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-a.registered:
	}
	var index uint64
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		var stubs []api.ClientAllocStub
		var meta *api.QueryMeta
		err := a.call(func(c *api.ClientNodes) error {
			var err error
			stubs, meta, err = c.AllocationStubs(a.nodeID, a.secret,
				(&api.QueryOptions{WaitIndex: index, WaitTime: 30 * time.Second}).WithContext(ctx))
			return err
		})
		if err == nil && a.stubsChanged(stubs) {
			err = a.fetchAndReconcile(ctx, meta.LastIndex)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// the index stays: the next query answers at once and retries
			a.logger.Warn("watch allocations failed", "error", err)
			sleepCtx(ctx, backoff.next())
			continue
		}
		backoff.reset()
		if meta.LastIndex < index {
			// another server's state is behind or was reset: start over
			index = 0
		} else {
			index = meta.LastIndex
		}
	}
}

// fetchAndReconcile fetches the node's allocations whole, from a server
// that has caught up with the stubs' index (so that none the stubs listed
// is missing and taken as garbage collected), and reconciles the runners.
func (a *Agent) fetchAndReconcile(ctx context.Context, atLeast uint64) error {
	q := &api.QueryOptions{WaitTime: 5 * time.Second}
	if atLeast > 0 {
		q.WaitIndex = atLeast - 1 // answers at once when the server has atLeast
	}
	var allocs []*structs.Allocation
	err := a.call(func(c *api.ClientNodes) error {
		var err error
		allocs, _, err = c.Allocations(a.nodeID, a.secret, q.WithContext(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("fetch allocations: %w", err)
	}
	a.reconcile(allocs)
	return nil
}

// stubsChanged reports whether reconcile has work in stubs: an allocation
// to start, one the servers changed, or a runner the servers no longer
// list.
func (a *Agent) stubsChanged(stubs []api.ClientAllocStub) bool {
	a.runnersMu.Lock()
	defer a.runnersMu.Unlock()
	listed := 0
	for _, st := range stubs {
		r := a.runners[st.ID]
		if r == nil {
			probe := structs.Allocation{DesiredStatus: st.DesiredStatus, ClientStatus: st.ClientStatus}
			if !probe.TerminalStatus() {
				return true
			}
			continue
		}
		listed++
		if st.AllocModifyIndex > r.modifyIndex || st.DesiredStatus != r.desiredStatus {
			return true
		}
	}
	return listed != len(a.runners)
}

// reconcile diffs the servers' allocations against the running ones: new
// allocations start, changed ones update (a stop kills their tasks),
// allocations the servers no longer list (garbage collected) are
// destroyed with their directories.
func (a *Agent) reconcile(allocs []*structs.Allocation) {
	seen := make(map[string]bool, len(allocs))
	var gone []*runner
	a.runnersMu.Lock()
	for _, al := range allocs {
		seen[al.ID] = true
		r := a.runners[al.ID]
		if r == nil {
			if al.TerminalStatus() || al.Job == nil {
				continue // finished or stopped before it got here
			}
			nr, err := a.newRunner(al)
			if err != nil {
				a.logger.Error("cannot run allocation", "alloc_id", al.ID, "error", err)
				continue
			}
			a.runners[al.ID] = nr
			nr.ar.Run()
			continue
		}
		if al.AllocModifyIndex > r.modifyIndex || al.DesiredStatus != r.desiredStatus {
			r.modifyIndex, r.desiredStatus = al.AllocModifyIndex, al.DesiredStatus
			r.ar.Update(al)
		}
	}
	for id, r := range a.runners {
		if !seen[id] {
			gone = append(gone, r)
			delete(a.runners, id)
		}
	}
	a.runnersMu.Unlock()
	for _, r := range gone {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := r.ar.Destroy(destroyTimeout); err != nil {
				a.logger.Warn("destroy allocation", "alloc_id", r.ar.ID(), "error", err)
			}
		}()
	}
}

func (a *Agent) newRunner(al *structs.Allocation) (*runner, error) {
	ar, err := allocrunner.New(allocrunner.Config{
		Alloc:     al,
		Node:      a.Node(),
		Region:    a.cfg.Region,
		AllocRoot: filepath.Join(a.cfg.DataDir, "alloc"),
		Drivers:   a.plugins.driver,
		Networks:  a.net,
		State:     a.db,
		OnChange:  a.updates.changed,
		Logger:    a.cfg.Logger.With("component", "alloc_runner"),
	})
	if err != nil {
		return nil, err
	}
	return &runner{ar: ar, modifyIndex: al.AllocModifyIndex, desiredStatus: al.DesiredStatus}, nil
}

// restore starts runners for the allocations in the agent's state,
// re-attaching to their tasks; the first answer of the watcher then
// stops or destroys what the servers no longer want.
func (a *Agent) restore() {
	recs, err := a.db.Allocs()
	if err != nil {
		a.logger.Warn("some agent state could not be read", "error", err)
	}
	a.runnersMu.Lock()
	defer a.runnersMu.Unlock()
	for _, rec := range recs {
		r, err := a.newRunner(rec.Alloc)
		if err != nil {
			a.logger.Error("cannot restore allocation", "alloc_id", rec.Alloc.ID, "error", err)
			continue
		}
		r.ar.Restore(rec.Tasks)
		r.ar.RestoreNetwork(rec.Network)
		a.runners[rec.Alloc.ID] = r
		r.ar.Run()
		a.logger.Info("restored allocation", "alloc_id", rec.Alloc.ID, "tasks", len(rec.Tasks))
	}
}

var _ allocrunner.StateStore = (*state.DB)(nil)
