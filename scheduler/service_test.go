package scheduler_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/structs"
)

func TestServicePlacesCount(t *testing.T) {
	h := cluster(t, 10)
	j := jobWithCount("web", 5)
	e := run(t, h, j)
	if e.Status != structs.EvalStatusComplete {
		t.Fatalf("eval status %q: %s", e.Status, e.StatusDescription)
	}
	allocs := live(h, j)
	want := []string{"web.web[0]", "web.web[1]", "web.web[2]", "web.web[3]", "web.web[4]"}
	if diff := cmp.Diff(want, names(allocs)); diff != "" {
		t.Fatalf("names (-want +got):\n%s", diff)
	}
	for _, a := range allocs {
		if a.Job == nil || a.NodeName == "" || a.EvalID != e.ID || a.DesiredStatus != structs.AllocDesiredStatusRun ||
			a.ClientStatus != structs.AllocClientStatusPending || a.CreateTime == 0 {
			t.Fatalf("badly filled alloc %+v", a)
		}
		tr := a.AllocatedResources.Tasks["server"]
		if tr.Cpu.CpuShares != 100 || tr.Memory.MemoryMB != 128 || a.AllocatedResources.Shared.DiskMB != 100 {
			t.Fatalf("resources %+v", a.AllocatedResources)
		}
		if a.Metrics == nil || a.Metrics.NodesEvaluated == 0 || len(a.Metrics.ScoreMetaData) == 0 {
			t.Fatalf("metrics %+v", a.Metrics)
		}
	}
	if e.QueuedAllocations["web"] != 0 || len(e.FailedTGAllocs) != 0 {
		t.Fatalf("queued %v failed %v", e.QueuedAllocations, e.FailedTGAllocs)
	}
	if d := h.LastPlan().Annotations.DesiredTGUpdates["web"]; d.Place != 5 {
		t.Fatalf("desired %+v", d)
	}
	// Running it again changes nothing.
	markRunning(h, j)
	plans := len(h.Plans)
	process(t, h, h.NewEval(j, structs.EvalTriggerJobRegister))
	if len(h.Plans) != plans {
		t.Fatalf("no-op eval submitted a plan: %+v", h.LastPlan())
	}
}
