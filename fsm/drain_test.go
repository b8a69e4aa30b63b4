package fsm

import (
	"errors"
	"testing"
	"time"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

const (
	evalID10 = "e0000000-0000-4000-8000-000000000010"
	evalID11 = "e0000000-0000-4000-8000-000000000011"
	nodeID3  = "5b0c1a8e-3f7a-4d5c-9a0e-6c1d2b3a4f03"
)

// drainFixture continues schedulingFixture() (applied from index 23): a
// drain starts, an allocation is marked to migrate, the drain completes.
func drainFixture() []entry {
	yes := true
	drainEval := testEval(evalID10, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerNodeDrain, structs.EvalStatusPending, 23)
	drainEval.NodeID = nodeID3
	// a node of its own, so that the scheduling fixture's outcome stands
	return []entry{
		/* 23 */ {NodeRegisterType, &NodeRegisterCommand{Node: testNode(nodeID3, "client-3")}},
		/* 24 */ {NodeUpdateDrainType, &NodeUpdateDrainCommand{NodeID: nodeID3,
			DrainStrategy: &structs.DrainStrategy{
				DrainSpec:     structs.DrainSpec{Deadline: time.Hour, IgnoreSystemJobs: true},
				ForceDeadline: t0.Add(23*time.Second + time.Hour), StartedAt: t0.Add(23 * time.Second),
			},
			NodeEvent: &structs.NodeEvent{Message: "Node drain strategy set", Subsystem: "Drain", Timestamp: t0.Add(23 * time.Second)},
			UpdatedAt: unixAt(23), Evals: []*structs.Evaluation{drainEval}}},
		/* 25 */ {AllocUpdateDesiredTransitionType, &AllocUpdateDesiredTransitionCommand{
			Allocs:    map[string]*structs.DesiredTransition{allocID3: {Migrate: &yes}, "a-garbage-collected": {Migrate: &yes}},
			Evals:     []*structs.Evaluation{testEval(evalID11, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerNodeDrain, structs.EvalStatusPending, 24)},
			UpdatedAt: unixAt(24)}},
		/* 26 */ {NodeUpdateDrainType, &NodeUpdateDrainCommand{NodeID: nodeID3,
			NodeEvent: &structs.NodeEvent{Message: "Node drain complete", Subsystem: "Drain", Timestamp: t0.Add(25 * time.Second)},
			UpdatedAt: unixAt(25)}},
	}
}

func TestNodeDrainApply(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	mustApply(t, f.FSM, 1, NodeRegisterType, &NodeRegisterCommand{Node: testNode(nodeID3, "client-3")})
	fx := drainFixture()
	mustApply(t, f.FSM, 2, fx[1].typ, fx[1].payload)
	n, _ := f.State().NodeByID(nil, nodeID3)
	if !n.Drain || n.DrainStrategy == nil || n.DrainStrategy.Deadline != time.Hour || n.SchedulingEligibility != structs.NodeSchedulingIneligible {
		t.Fatalf("node after drain start = %+v", n)
	}
	if len(n.Events) != 1 || n.Events[0].CreateIndex != 2 || n.Events[0].Message != "Node drain strategy set" {
		t.Fatalf("events = %+v", n.Events)
	}
	if e, _ := f.State().EvalByID(nil, evalID10); e == nil {
		t.Fatal("drain evaluation not stored")
	}
	// a draining node cannot be made eligible by the eligibility command
	res := applyAt(t, f.FSM, 3, NodeUpdateEligibilityType, &NodeUpdateEligibilityCommand{NodeID: nodeID3, Eligibility: structs.NodeSchedulingEligible})
	if err, _ := res.(error); !errors.Is(err, state.ErrInvalidRequest) {
		t.Fatalf("eligible while draining = %v", res)
	}
	// completion clears the strategy and leaves the node ineligible
	mustApply(t, f.FSM, 4, fx[3].typ, fx[3].payload)
	n, _ = f.State().NodeByID(nil, nodeID3)
	if n.Drain || n.DrainStrategy != nil || n.SchedulingEligibility != structs.NodeSchedulingIneligible || len(n.Events) != 2 {
		t.Fatalf("node after drain complete = %+v", n)
	}
	// cancelling with MarkEligible makes it eligible again
	mustApply(t, f.FSM, 5, NodeUpdateDrainType, &NodeUpdateDrainCommand{NodeID: nodeID3, MarkEligible: true})
	n, _ = f.State().NodeByID(nil, nodeID3)
	if n.SchedulingEligibility != structs.NodeSchedulingEligible || n.ModifyIndex != 5 {
		t.Fatalf("node after cancel = %+v", n)
	}
	res = applyAt(t, f.FSM, 6, NodeUpdateDrainType, &NodeUpdateDrainCommand{NodeID: "ghost"})
	if err, _ := res.(error); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("drain of unknown node = %v", res)
	}
}

func TestAllocDesiredTransitionApply(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	mustApply(t, f.FSM, 1, AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
		testAlloc(allocID1, structs.DefaultNamespace, "web", evalID1, nodeID1, "web-group", structs.AllocClientStatusRunning, 1),
	}})
	yes, no := true, false
	mustApply(t, f.FSM, 2, AllocUpdateDesiredTransitionType, &AllocUpdateDesiredTransitionCommand{
		Allocs: map[string]*structs.DesiredTransition{allocID1: {Migrate: &yes}, "unknown": {Migrate: &yes}}, UpdatedAt: unixAt(2)})
	a, _ := f.State().AllocByID(nil, allocID1)
	if !a.DesiredTransition.ShouldMigrate() || a.ModifyIndex != 2 || a.ModifyTime != unixAt(2) {
		t.Fatalf("alloc = %+v", a)
	}
	// a later transition merges: Reschedule set, Migrate kept
	mustApply(t, f.FSM, 3, AllocUpdateDesiredTransitionType, &AllocUpdateDesiredTransitionCommand{
		Allocs: map[string]*structs.DesiredTransition{allocID1: {Reschedule: &no}}})
	a, _ = f.State().AllocByID(nil, allocID1)
	if !a.DesiredTransition.ShouldMigrate() || a.DesiredTransition.Reschedule == nil || *a.DesiredTransition.Reschedule {
		t.Fatalf("merged transition = %+v", a.DesiredTransition)
	}
}
