package scheduler_test

import (
	"testing"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

func dcCluster(t *testing.T, perDC map[string]int) *schedtest.Harness {
	h := schedtest.New()
	i := 0
	for _, dc := range []string{"dc1", "dc2", "dc3"} {
		for range perDC[dc] {
			n := schedtest.Node(i)
			n.Datacenter = dc
			n.ComputedClass = scheduler.ComputeNodeClass(n)
			h.State.UpsertNode(n)
			i++
		}
	}
	return h
}

func perDC(h *schedtest.Harness, allocs []*structs.Allocation) map[string]int {
	m := map[string]int{}
	for _, a := range allocs {
		n, _ := h.State.NodeByID(a.NodeID)
		m[n.Datacenter]++
	}
	return m
}

func TestSpreadEven(t *testing.T) {
	h := dcCluster(t, map[string]int{"dc1": 20, "dc2": 3, "dc3": 3})
	j := jobWithCount("web", 30)
	j.TaskGroups[0].Spreads = []*structs.Spread{{Attribute: "${node.datacenter}", Weight: 100}}
	run(t, h, j)
	got := perDC(h, live(h, j))
	for dc, n := range got {
		if n < 8 || n > 12 {
			t.Fatalf("uneven spread %v (%s)", got, dc)
		}
	}
}

func TestSpreadTargets(t *testing.T) {
	h := dcCluster(t, map[string]int{"dc1": 10, "dc2": 10, "dc3": 10})
	j := jobWithCount("web", 20)
	j.Spreads = []*structs.Spread{{Attribute: "${node.datacenter}", Weight: 100, SpreadTarget: []*structs.SpreadTarget{
		{Value: "dc1", Percent: 70}, {Value: "dc2", Percent: 30},
	}}}
	run(t, h, j)
	got := perDC(h, live(h, j))
	if got["dc1"] < 12 || got["dc2"] < 4 || got["dc3"] > 2 {
		t.Fatalf("spread targets 70/30/0: %v", got)
	}
}

func TestAffinity(t *testing.T) {
	h := dcCluster(t, map[string]int{"dc1": 10, "dc2": 10})
	j := jobWithCount("web", 10)
	j.TaskGroups[0].Affinities = []*structs.Affinity{{LTarget: "${node.datacenter}", Operand: "=", RTarget: "dc2", Weight: 100}}
	run(t, h, j)
	if got := perDC(h, live(h, j)); got["dc2"] != 10 {
		t.Fatalf("affinity for dc2: %v", got)
	}
	j2 := jobWithCount("anti", 10)
	j2.TaskGroups[0].Affinities = []*structs.Affinity{{LTarget: "${node.datacenter}", Operand: "=", RTarget: "dc2", Weight: -100}}
	run(t, h, j2)
	if got := perDC(h, live(h, j2)); got["dc1"] != 10 {
		t.Fatalf("anti-affinity for dc2: %v", got)
	}
	for _, a := range live(h, j2) {
		if _, ok := a.Metrics.ScoreMetaData[0].Scores["node-affinity"]; !ok && perDC(h, []*structs.Allocation{a})["dc2"] == 1 {
			t.Fatalf("no affinity score: %+v", a.Metrics.ScoreMetaData[0])
		}
	}
}

func TestBinpackVersusSpreadAlgorithm(t *testing.T) {
	for _, algo := range []string{structs.SchedulerAlgorithmBinpack, structs.SchedulerAlgorithmSpread} {
		h := cluster(t, 10)
		cfg := structs.DefaultSchedulerConfiguration()
		cfg.SchedulerAlgorithm = algo
		h.State.SetSchedulerConfig(cfg)
		// Nodes 0..4 already half full.
		filler := jobWithCount("filler", 5)
		filler.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 2000, MemoryMB: 4096}
		filler.Constraints = []*structs.Constraint{{LTarget: "${node.unique.name}", Operand: "regexp", RTarget: "^node-[0-4]$"}, {Operand: structs.ConstraintDistinctHosts}}
		run(t, h, filler)
		j := jobWithCount("web", 20)
		run(t, h, j)
		onFull := 0
		for _, a := range live(h, j) {
			n, _ := h.State.NodeByID(a.NodeID)
			if n.Name <= "node-4" && len(n.Name) == 6 {
				onFull++
			}
		}
		if algo == structs.SchedulerAlgorithmBinpack && onFull < 11 {
			t.Errorf("binpack put only %d of 20 on the fuller nodes", onFull)
		}
		if algo == structs.SchedulerAlgorithmSpread && onFull > 9 {
			t.Errorf("spread put %d of 20 on the fuller nodes", onFull)
		}
	}
}

func TestPartialCommitRefreshes(t *testing.T) {
	h := cluster(t, 4)
	bad := schedtest.Node(0).ID
	h.RejectNodes = map[string]bool{bad: true}
	h.RejectPlans = 1
	j := jobWithCount("web", 8)
	e := run(t, h, j)
	if e.Status != structs.EvalStatusComplete {
		t.Fatalf("eval %+v", e)
	}
	if len(h.Plans) < 2 || h.Results[0].RefreshIndex == 0 {
		t.Fatalf("no re-plan after partial commit: %d plans", len(h.Plans))
	}
	if got := len(live(h, j)); got != 8 {
		t.Fatalf("live %d after refresh", got)
	}
	// A node that always refuses: bounded attempts, then the eval fails.
	h2 := cluster(t, 1)
	h2.RejectNodes = map[string]bool{schedtest.Node(0).ID: true}
	e2 := run(t, h2, jobWithCount("web", 1))
	if e2.Status != structs.EvalStatusFailed || len(h2.Plans) != 5 {
		t.Fatalf("eval %q after %d plans", e2.Status, len(h2.Plans))
	}
}

func TestDeterministicPlans(t *testing.T) {
	place := func() map[string]string {
		h := cluster(t, 50)
		j := jobWithCount("web", 40)
		run(t, h, j)
		m := map[string]string{}
		for _, a := range live(h, j) {
			m[a.Name] = a.NodeID
		}
		return m
	}
	a, b := place(), place()
	for k, v := range a {
		if b[k] != v {
			t.Fatalf("%s placed on %s then %s", k, v, b[k])
		}
	}
}
