package scheduler_test

import (
	"testing"

	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

func TestSystemFollowsNodes(t *testing.T) {
	h := cluster(t, 4)
	j := schedtest.SystemJob("agent")
	j.Constraints = []*structs.Constraint{{LTarget: "${meta.rack}", Operand: "!=", RTarget: "r3"}}
	run(t, h, j)
	allocs := live(h, j)
	if len(allocs) != 3 || len(nodesUsed(allocs)) != 3 {
		t.Fatalf("system placed %v", nodesUsed(allocs))
	}
	for _, a := range allocs {
		if a.Name != "agent.web[0]" {
			t.Fatalf("name %q", a.Name)
		}
	}
	markRunning(h, j)
	// A node joins, one goes down, one becomes infeasible.
	h.State.UpsertNode(schedtest.Node(4))
	down := schedtest.Node(1)
	down.Status = structs.NodeStatusDown
	h.State.UpsertNode(down)
	moved := schedtest.Node(2)
	moved.Meta["rack"] = "r3"
	h.State.UpsertNode(moved)
	process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
	p := h.LastPlan()
	if len(p.NodeAllocation[schedtest.Node(4).ID]) != 1 {
		t.Fatalf("no placement on the new node: %+v", p.NodeAllocation)
	}
	if s := p.NodeUpdate[down.ID]; len(s) != 1 || s[0].ClientStatus != structs.AllocClientStatusLost {
		t.Fatalf("down node stops %+v", s)
	}
	if s := p.NodeUpdate[moved.ID]; len(s) != 1 {
		t.Fatalf("infeasible node stops %+v", s)
	}
	if got := len(live(h, j)); got != 2 {
		t.Fatalf("live %d", got)
	}
	// An ineligible node keeps its alloc but gets no new one.
	inel := schedtest.Node(0)
	inel.SchedulingEligibility = structs.NodeSchedulingIneligible
	h.State.UpsertNode(inel)
	h.State.UpsertNode(schedtest.Node(5))
	process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
	if _, ok := h.LastPlan().NodeUpdate[inel.ID]; ok {
		t.Fatal("alloc stopped on an ineligible node")
	}
	if got := len(live(h, j)); got != 3 {
		t.Fatalf("live %d", got)
	}
}

func TestSysBatchRunsOncePerNode(t *testing.T) {
	h := cluster(t, 3)
	j := schedtest.SystemJob("once")
	j.Type = structs.JobTypeSysBatch
	run(t, h, j)
	allocs := live(h, j)
	if len(allocs) != 3 {
		t.Fatalf("placed %d", len(allocs))
	}
	for _, a := range allocs {
		c := *a
		c.ClientStatus = structs.AllocClientStatusComplete
		h.State.UpsertAllocs(&c)
	}
	plans := len(h.Plans)
	process(t, h, h.NewEval(j, structs.EvalTriggerJobRegister))
	if len(h.Plans) != plans {
		t.Fatalf("sysbatch re-ran completed allocs: %+v", h.LastPlan().NodeAllocation)
	}
	h.State.UpsertNode(schedtest.Node(7))
	process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
	if got := len(live(h, j)); got != 1 {
		t.Fatalf("new node: live %d", got)
	}
}

func TestSystemPreemptsLowerPriority(t *testing.T) {
	h := cluster(t, 1)
	low := jobWithCount("low", 3)
	low.Priority = 20
	low.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 1300, MemoryMB: 512}
	run(t, h, low)
	markRunning(h, low)
	mid := jobWithCount("mid", 0)
	mid.Priority = 65
	run(t, h, mid)

	sys := schedtest.SystemJob("agent")
	sys.Priority = 70
	sys.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 500, MemoryMB: 256}
	e := run(t, h, sys)
	if e.Status != structs.EvalStatusComplete || len(e.FailedTGAllocs) != 0 {
		t.Fatalf("eval %+v", e)
	}
	p := h.LastPlan()
	var pre []*structs.Allocation
	for _, as := range p.NodePreemptions {
		pre = append(pre, as...)
	}
	if len(pre) != 1 || pre[0].JobID != "low" || pre[0].DesiredStatus != structs.AllocDesiredStatusEvict {
		t.Fatalf("preempted %+v", pre)
	}
	placed := live(h, sys)
	if len(placed) != 1 || len(placed[0].PreemptedAllocations) != 1 || placed[0].PreemptedAllocations[0] != pre[0].ID {
		t.Fatalf("placed %+v", placed)
	}
	if d := p.Annotations.DesiredTGUpdates["web"]; d.Preemptions != 1 || len(p.Annotations.PreemptedAllocs) != 1 {
		t.Fatalf("annotations %+v", p.Annotations)
	}
	// The preempted job gets an evaluation.
	found := false
	for _, c := range h.Created {
		if c.JobID == "low" && c.TriggeredBy == structs.EvalTriggerPreemption {
			found = true
		}
	}
	if !found {
		t.Fatal("no evaluation for the preempted job")
	}
}

func TestServicePreemptionOnlyWhenEnabled(t *testing.T) {
	setup := func(enabled bool) (*structs.Evaluation, *structs.Plan) {
		h := cluster(t, 1)
		cfg := structs.DefaultSchedulerConfiguration()
		cfg.PreemptionConfig.ServiceSchedulerEnabled = enabled
		h.State.SetSchedulerConfig(cfg)
		low := jobWithCount("low", 2)
		low.Priority = 40
		low.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 1900, MemoryMB: 512}
		run(t, h, low)
		// Within 10 of 55: not preemptible.
		near := jobWithCount("near", 1)
		near.Priority = 50
		near.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 100, MemoryMB: 512}
		run(t, h, near)
		hi := jobWithCount("hi", 1)
		hi.Priority = 55
		hi.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 1500, MemoryMB: 512}
		return run(t, h, hi), h.LastPlan()
	}
	e, _ := setup(false)
	if e.FailedTGAllocs["web"] == nil {
		t.Fatal("placed without preemption on a full node")
	}
	e, p := setup(true)
	if len(e.FailedTGAllocs) != 0 {
		t.Fatalf("failed with preemption: %+v", e.FailedTGAllocs["web"])
	}
	n := 0
	for _, as := range p.NodePreemptions {
		for _, a := range as {
			n++
			if a.JobID != "low" {
				t.Fatalf("preempted %s", a.JobID)
			}
		}
	}
	if n != 1 {
		t.Fatalf("preempted %d, want the one needed", n)
	}
}
