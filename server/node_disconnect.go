package server

import (
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// A node that misses its heartbeat while it runs allocations of groups
// with a disconnect window (disconnect.lost_after, max_client_disconnect)
// is first marked disconnected: those allocations become "unknown" and the
// scheduler places replacements (scheduler/disconnect.go). The node's
// timer is re-armed with the longest window: a heartbeat before it fires
// brings the node back (its allocations are kept, the replacements
// stopped); otherwise the node goes down and the unknown allocations are
// lost.

const descUnknown = "alloc is unknown since its node is disconnected"

// markNodeDisconnected marks the node disconnected if some allocation on
// it tolerates a disconnect; it reports whether it did.
func (s *Server) markNodeDisconnected(st *state.StateStore, node *structs.Node, now int64) (bool, error) {
	if node.Status == structs.NodeStatusDisconnected {
		return false, nil // the window passed: down
	}
	window, unknown, err := disconnectWindow(st, node)
	if err != nil || window <= 0 {
		return false, err
	}
	if len(unknown) > 0 {
		if _, _, err := s.raftApply(fsm.AllocClientUpdateType, &fsm.AllocClientUpdateCommand{Allocs: unknown, UpdatedAt: now}); err != nil {
			return false, err
		}
	}
	evals, err := nodeEvals(st, node, true, false, now)
	if err != nil {
		return false, err
	}
	if _, _, err := s.raftApply(fsm.NodeUpdateStatusType, &fsm.NodeUpdateStatusCommand{
		NodeID: node.ID, Status: structs.NodeStatusDisconnected, UpdatedAt: now, Evals: evals,
	}); err != nil {
		return false, err
	}
	h := &s.heartbeats
	h.mu.Lock()
	if h.active {
		s.resetHeartbeatTimerLocked(node.ID, window)
	}
	h.mu.Unlock()
	s.logger.Info("node missed its heartbeat and is disconnected", "node_id", node.ID,
		"unknown_allocs", len(unknown), "lost_after", window)
	return true, nil
}

// disconnectWindow is the longest disconnect window of the groups with
// live allocations on the node, with those allocations' updates to unknown.
func disconnectWindow(st *state.StateStore, node *structs.Node) (time.Duration, []*structs.Allocation, error) {
	allocs, err := st.AllocsByNode(nil, node.ID)
	if err != nil {
		return 0, nil, err
	}
	var window time.Duration
	var unknown []*structs.Allocation
	for _, a := range allocs {
		if a.TerminalStatus() || a.DesiredStatus != structs.AllocDesiredStatusRun {
			continue
		}
		job, err := allocJob(st, a)
		if err != nil {
			return 0, nil, err
		}
		if job == nil || job.Type == structs.JobTypeSystem || job.Type == structs.JobTypeSysBatch {
			continue
		}
		w := scheduler.DisconnectWindow(job.LookupTaskGroup(a.TaskGroup))
		if w <= 0 {
			continue
		}
		window = max(window, w)
		if a.ClientStatus != structs.AllocClientStatusUnknown {
			unknown = append(unknown, &structs.Allocation{ID: a.ID, ClientStatus: structs.AllocClientStatusUnknown,
				ClientDescription: descUnknown})
		}
	}
	return window, unknown, nil
}
