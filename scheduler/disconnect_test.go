package scheduler_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

func nodeByID(t *testing.T, h *schedtest.Harness, id string) *structs.Node {
	t.Helper()
	n, err := h.State.NodeByID(id)
	if err != nil || n == nil {
		t.Fatalf("node %s: %v", id, err)
	}
	c := *n
	return &c
}

// An unknown alloc on a disconnected node keeps its slot and gets a
// replacement; when its node comes back the replacement is stopped; when
// the node goes down instead, the original is lost and not replaced again.
func TestDisconnectedAllocReplacedThenReconciled(t *testing.T) {
	for _, back := range []bool{true, false} {
		h := cluster(t, 3)
		j := jobWithCount("web", 2)
		j.TaskGroups[0].Disconnect = &structs.DisconnectStrategy{LostAfter: time.Minute, Replace: true}
		run(t, h, j)
		markRunning(h, j)
		orig := live(h, j)[0]
		n := nodeByID(t, h, orig.NodeID)
		n.Status = structs.NodeStatusDisconnected
		h.State.UpsertNode(n)
		u := *orig
		u.ClientStatus = structs.AllocClientStatusUnknown
		h.State.UpsertAllocs(&u)

		process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
		if stops := h.LastPlan().NodeUpdate[orig.NodeID]; len(stops) != 0 {
			t.Fatalf("unknown alloc stopped: %+v", stops)
		}
		var repl *structs.Allocation
		for _, a := range live(h, j) {
			if a.PreviousAllocation == orig.ID {
				repl = a
			}
		}
		if repl == nil || repl.NodeID == orig.NodeID || repl.Name != orig.Name || len(live(h, j)) != 3 {
			t.Fatalf("replacement = %+v, live %d", repl, len(live(h, j)))
		}
		// a second evaluation while disconnected changes nothing
		process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
		if got := len(live(h, j)); got != 3 {
			t.Fatalf("live after a second eval = %d, want 3", got)
		}

		if back {
			n.Status = structs.NodeStatusReady
			h.State.UpsertNode(n)
			process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
			ids := map[string]bool{}
			for _, a := range live(h, j) {
				ids[a.ID] = true
			}
			if len(ids) != 2 || !ids[orig.ID] || ids[repl.ID] {
				t.Fatalf("after reconnect live = %v, want the original kept and the replacement stopped", ids)
			}
			continue
		}
		n.Status = structs.NodeStatusDown
		h.State.UpsertNode(n)
		process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
		if s := h.LastPlan().NodeUpdate[orig.NodeID]; len(s) != 1 || s[0].ClientStatus != structs.AllocClientStatusLost {
			t.Fatalf("window passed: stops %+v, want the original lost", s)
		}
		ids := map[string]bool{}
		for _, a := range live(h, j) {
			ids[a.ID] = true
		}
		if len(ids) != 2 || ids[orig.ID] || !ids[repl.ID] {
			t.Fatalf("after the window live = %v, want the replacement only in its slot", ids)
		}
	}
}

// Without a disconnect window, allocs on a disconnected node are lost.
func TestDisconnectedWithoutWindowIsLost(t *testing.T) {
	h := cluster(t, 2)
	j := jobWithCount("web", 1)
	run(t, h, j)
	markRunning(h, j)
	orig := live(h, j)[0]
	n := nodeByID(t, h, orig.NodeID)
	n.Status = structs.NodeStatusDisconnected
	h.State.UpsertNode(n)
	process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
	if s := h.LastPlan().NodeUpdate[orig.NodeID]; len(s) != 1 || s[0].ClientStatus != structs.AllocClientStatusLost {
		t.Fatalf("stops %+v, want the alloc lost", s)
	}
}
