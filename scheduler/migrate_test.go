package scheduler_test

import (
	"testing"

	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

func markMigrate(h *schedtest.Harness, a *structs.Allocation) {
	c := *a
	yes := true
	c.DesiredTransition.Migrate = &yes
	h.State.UpsertAllocs(&c)
}

// A service alloc marked to migrate is stopped and replaced, under the
// same name, on a node that is not draining; unmarked allocs stay.
func TestMigrateMarkedServiceAlloc(t *testing.T) {
	h := cluster(t, 3)
	j := jobWithCount("web", 3)
	run(t, h, j)
	markRunning(h, j)
	allocs := live(h, j)
	victim := allocs[0]
	drained := schedtest.Node(0)
	for i := range 3 {
		if schedtest.Node(i).ID == victim.NodeID {
			drained = schedtest.Node(i)
		}
	}
	drained.Drain = true
	drained.DrainStrategy = &structs.DrainStrategy{}
	drained.SchedulingEligibility = structs.NodeSchedulingIneligible
	h.State.UpsertNode(drained)
	markMigrate(h, victim)

	process(t, h, h.NewEval(j, structs.EvalTriggerNodeDrain))
	p := h.LastPlan()
	stops := p.NodeUpdate[victim.NodeID]
	if len(stops) != 1 || stops[0].ID != victim.ID {
		t.Fatalf("stops on the draining node = %+v, want only %s", stops, victim.ID)
	}
	var placed []*structs.Allocation
	for node, as := range p.NodeAllocation {
		for _, a := range as {
			if a.CreateIndex == 0 && a.ID != victim.ID && a.PreviousAllocation == victim.ID {
				if node == drained.ID {
					t.Fatalf("replacement placed on the draining node")
				}
				placed = append(placed, a)
			}
		}
	}
	if len(placed) != 1 || placed[0].Name != victim.Name {
		t.Fatalf("replacements = %+v, want one named %s", placed, victim.Name)
	}
	if got := len(live(h, j)); got != 3 {
		t.Fatalf("live = %d, want 3", got)
	}
	// a second evaluation does not migrate anything more
	process(t, h, h.NewEval(j, structs.EvalTriggerNodeDrain))
	if got := len(live(h, j)); got != 3 {
		t.Fatalf("live after a second eval = %d, want 3", got)
	}
}

// System allocs stay on a draining node until the drainer marks them.
func TestSystemAllocsLeaveDrainingNodeOnlyWhenMarked(t *testing.T) {
	h := cluster(t, 2)
	j := schedtest.SystemJob("agent")
	run(t, h, j)
	markRunning(h, j)
	n := schedtest.Node(0)
	n.Drain = true
	n.DrainStrategy = &structs.DrainStrategy{}
	n.SchedulingEligibility = structs.NodeSchedulingIneligible
	h.State.UpsertNode(n)
	process(t, h, h.NewEval(j, structs.EvalTriggerNodeDrain))
	if got := len(live(h, j)); got != 2 {
		t.Fatalf("unmarked system alloc stopped: live %d", got)
	}
	for _, a := range live(h, j) {
		if a.NodeID == n.ID {
			markMigrate(h, a)
		}
	}
	process(t, h, h.NewEval(j, structs.EvalTriggerNodeDrain))
	for _, a := range live(h, j) {
		if a.NodeID == n.ID {
			t.Fatalf("marked system alloc still live on the draining node")
		}
	}
	if got := len(live(h, j)); got != 1 {
		t.Fatalf("live = %d, want 1 (system allocs are not replaced elsewhere)", got)
	}
}
