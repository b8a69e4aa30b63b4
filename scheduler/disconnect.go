package scheduler

import (
	"time"

	"github.com/berth-dev/berth/structs"
)

// Disconnected clients (the group's disconnect block, or the older
// max_client_disconnect): when a node misses its heartbeat the servers mark
// it disconnected and the allocations of such groups "unknown" (not lost).
// The scheduler then keeps each unknown allocation in its slot and places
// a replacement elsewhere (unless disconnect.replace is false); should the
// node come back within the window, the original is kept and the
// replacement stopped (reconcile "best_score" with equal scores: keep the
// original); once the window passes the node is down and the original lost.

const descReconnected = "alloc not needed as its original allocation reconnected"

// DisconnectWindow is how long the group's allocations may stay unknown on
// a disconnected node before they are lost; 0 when the group has none.
func DisconnectWindow(tg *structs.TaskGroup) time.Duration {
	if tg == nil {
		return 0
	}
	if tg.Disconnect != nil && tg.Disconnect.LostAfter > 0 {
		return tg.Disconnect.LostAfter
	}
	return tg.MaxClientDisconnect
}

// disconnectedSlot returns the slot of a live allocation on a disconnected
// node whose group tolerates disconnects: a slot to fill with a
// replacement that does not stop the original, or, without replace, a slot
// the original keeps. ok is false when the usual rules apply.
func (s *schedCtx) disconnectedSlot(tg *structs.TaskGroup, a *structs.Allocation, idx int) (slot, bool) {
	n := s.node(a.NodeID)
	if n == nil || n.Status != structs.NodeStatusDisconnected || DisconnectWindow(tg) <= 0 {
		return slot{}, false
	}
	if tg.Disconnect != nil && !tg.Disconnect.Replace {
		return slot{index: idx, alloc: a, kind: slotOccupied}, true
	}
	return slot{index: idx, alloc: a, kind: slotReplace}, true
}

// replacedOriginalBack reports whether a is the replacement of an
// allocation that is live again on a ready node: the original reconnected,
// so the replacement goes.
func (s *schedCtx) replacedOriginalBack(group []*structs.Allocation, a *structs.Allocation) bool {
	if a.PreviousAllocation == "" {
		return false
	}
	for _, p := range group {
		if p.ID != a.PreviousAllocation {
			continue
		}
		if p.DesiredStatus != structs.AllocDesiredStatusRun || p.TerminalStatus() {
			return false
		}
		n := s.node(p.NodeID)
		return n != nil && n.Status == structs.NodeStatusReady
	}
	return false
}
