package scheduler_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

// update registers a changed copy of the job and processes it.
func update(t *testing.T, h *schedtest.Harness, j *structs.Job, mut func(*structs.Job)) (*structs.Job, *structs.Evaluation) {
	t.Helper()
	c := j.Copy()
	mut(c)
	return c, run(t, h, c)
}

func TestScaleDownStopsHighestIndex(t *testing.T) {
	h := cluster(t, 5)
	j := jobWithCount("web", 5)
	run(t, h, j)
	markRunning(h, j)
	j2, _ := update(t, h, j, func(j *structs.Job) { j.TaskGroups[0].Count = 2 })
	if diff := cmp.Diff([]string{"web.web[0]", "web.web[1]"}, names(live(h, j2))); diff != "" {
		t.Fatalf("kept (-want +got):\n%s", diff)
	}
	d := h.LastPlan().Annotations.DesiredTGUpdates["web"]
	if d.Stop != 3 || d.InPlaceUpdate != 2 {
		t.Fatalf("desired %+v", d)
	}
}

func TestInPlaceVersusDestructive(t *testing.T) {
	h := cluster(t, 5)
	j := jobWithCount("web", 3)
	run(t, h, j)
	markRunning(h, j)
	before := live(h, j)

	// Meta only: in place, same allocs, new job version.
	j2, _ := update(t, h, j, func(j *structs.Job) { j.Meta = map[string]string{"owner": "ops"} })
	p := h.LastPlan()
	if d := p.Annotations.DesiredTGUpdates["web"]; d.InPlaceUpdate != 3 || d.DestructiveUpdate != 0 || len(p.NodeUpdate) != 0 {
		t.Fatalf("meta change: %+v", d)
	}
	after := live(h, j2)
	if diff := cmp.Diff(ids(before), ids(after)); diff != "" {
		t.Fatalf("in-place changed alloc IDs:\n%s", diff)
	}
	for _, a := range after {
		if a.Job.Version != j2.Version {
			t.Fatalf("alloc still on version %d", a.Job.Version)
		}
	}

	// Image change: destructive, limited by max_parallel (1 by default).
	j3, _ := update(t, h, j2, func(j *structs.Job) { j.TaskGroups[0].Tasks[0].Config["image"] = "nginx:1.28" })
	d := h.LastPlan().Annotations.DesiredTGUpdates["web"]
	if d.DestructiveUpdate != 1 || d.Ignore != 2 || d.Place != 0 {
		t.Fatalf("destructive: %+v", d)
	}
	var replaced *structs.Allocation
	for _, a := range live(h, j3) {
		if a.Job.Version == j3.Version {
			replaced = a
		}
	}
	if replaced == nil || replaced.PreviousAllocation == "" {
		t.Fatalf("no replacement with PreviousAllocation")
	}
	// With max_parallel 0 every alloc is replaced at once.
	j4, _ := update(t, h, j3, func(j *structs.Job) {
		j.TaskGroups[0].Update.MaxParallel = 0
		j.TaskGroups[0].Tasks[0].Resources.MemoryMB = 256
	})
	if d := h.LastPlan().Annotations.DesiredTGUpdates["web"]; d.DestructiveUpdate != 3 {
		t.Fatalf("all at once: %+v", d)
	}
	if got := len(live(h, j4)); got != 3 {
		t.Fatalf("live %d", got)
	}
}

func ids(allocs []*structs.Allocation) map[string]bool {
	m := map[string]bool{}
	for _, a := range allocs {
		m[a.ID] = true
	}
	return m
}

func TestJobStopAndDeregister(t *testing.T) {
	h := cluster(t, 3)
	j := jobWithCount("web", 4)
	run(t, h, j)
	_, e := update(t, h, j, func(j *structs.Job) { j.Stop = true })
	if got := len(live(h, j)); got != 0 || e.Status != structs.EvalStatusComplete {
		t.Fatalf("after stop: %d live, eval %q", got, e.Status)
	}
	for _, as := range h.LastPlan().NodeUpdate {
		for _, a := range as {
			if a.DesiredDescription != "alloc not needed since job was stopped" || a.Job != nil {
				t.Fatalf("stop %+v", a)
			}
		}
	}
}

func TestDeregisteredJobStopsAll(t *testing.T) {
	h := cluster(t, 2)
	j := jobWithCount("web", 2)
	run(t, h, j)
	e := h.NewEval(j, structs.EvalTriggerJobDeregister)
	e.JobID = "web"
	// A state in which the job is gone but its allocs remain.
	h2 := schedtest.New()
	h2.NewID = h.NewID
	for i := range 2 {
		h2.State.UpsertNode(schedtest.Node(i))
	}
	h2.State.UpsertAllocs(live(h, j)...)
	process(t, h2, e)
	if got := len(live(h2, j)); got != 0 {
		t.Fatalf("%d allocs still live", got)
	}
	for _, as := range h2.LastPlan().NodeUpdate {
		if as[0].DesiredDescription != "alloc not needed since job was deregistered" {
			t.Fatalf("desc %q", as[0].DesiredDescription)
		}
	}
}

func TestLostAllocsReplaced(t *testing.T) {
	h := cluster(t, 4)
	j := jobWithCount("web", 4)
	j.Constraints = []*structs.Constraint{{Operand: structs.ConstraintDistinctHosts}}
	run(t, h, j)
	markRunning(h, j)
	down, _ := h.State.NodeByID(schedtest.Node(2).ID)
	c := *down
	c.Status = structs.NodeStatusDown
	h.State.UpsertNode(&c)
	h.State.UpsertNode(schedtest.Node(9))
	e := process(t, h, h.NewEval(j, structs.EvalTriggerNodeUpdate))
	if e.Status != structs.EvalStatusComplete {
		t.Fatalf("eval %+v", e)
	}
	p := h.LastPlan()
	stops := p.NodeUpdate[c.ID]
	if len(stops) != 1 || stops[0].ClientStatus != structs.AllocClientStatusLost {
		t.Fatalf("stops %+v", stops)
	}
	placed := p.NodeAllocation[schedtest.Node(9).ID]
	if len(placed) != 1 || placed[0].PreviousAllocation != stops[0].ID || placed[0].Name != stops[0].Name {
		t.Fatalf("replacement %+v", placed)
	}
}

func TestRescheduleFailedAlloc(t *testing.T) {
	h := cluster(t, 3)
	j := jobWithCount("web", 1)
	j.TaskGroups[0].ReschedulePolicy = &structs.ReschedulePolicy{
		Attempts: 2, Interval: time.Hour, Delay: 30 * time.Second, DelayFunction: structs.DelayFunctionConstant,
	}
	run(t, h, j)
	first := live(h, j)[0]
	h.State.UpsertAllocs(schedtest.Failed(first, h.Clock.Now()))

	// Within the delay: no placement, a follow-up eval at fail+30s.
	e := process(t, h, h.NewEval(j, structs.EvalTriggerRetryFailedAlloc))
	if e.Status != structs.EvalStatusComplete || len(h.Created) != 1 {
		t.Fatalf("eval %+v created %d", e, len(h.Created))
	}
	f := h.Created[0]
	if !f.WaitUntil.Equal(h.Clock.Now().Add(30*time.Second)) || f.TriggeredBy != structs.EvalTriggerRetryFailedAlloc {
		t.Fatalf("follow-up %+v", f)
	}
	stored, _ := h.State.AllocByID(first.ID)
	if stored.FollowupEvalID != f.ID {
		t.Fatalf("FollowupEvalID %q", stored.FollowupEvalID)
	}
	// Running the eval again does not create a second follow-up.
	process(t, h, h.NewEval(j, structs.EvalTriggerRetryFailedAlloc))
	if len(h.Created) != 1 {
		t.Fatalf("created %d", len(h.Created))
	}

	// After the delay: replaced, preferably on another node.
	h.Clock.Advance(31 * time.Second)
	process(t, h, f)
	allocs := live(h, j)
	if len(allocs) != 1 || allocs[0].PreviousAllocation != first.ID || allocs[0].NodeID == first.NodeID {
		t.Fatalf("replacement %+v (first on %s)", allocs, first.NodeName)
	}
	second := allocs[0]
	// Second failure: attempt 2 of 2. Third: exhausted, not replaced.
	h.State.UpsertAllocs(schedtest.Failed(second, h.Clock.Now()))
	h.Clock.Advance(31 * time.Second)
	process(t, h, h.NewEval(j, structs.EvalTriggerRetryFailedAlloc))
	third := live(h, j)
	if len(third) != 1 {
		t.Fatalf("second reschedule: %d live", len(third))
	}
	h.State.UpsertAllocs(schedtest.Failed(third[0], h.Clock.Now()))
	h.Clock.Advance(31 * time.Second)
	process(t, h, h.NewEval(j, structs.EvalTriggerRetryFailedAlloc))
	if got := len(live(h, j)); got != 0 {
		t.Fatalf("rescheduled beyond attempts: %d live", got)
	}
}

func TestBatchNeverReplacesComplete(t *testing.T) {
	h := cluster(t, 3)
	j := schedtest.BatchJob("job", 3)
	run(t, h, j)
	allocs := live(h, j)
	done := *allocs[0]
	done.ClientStatus = structs.AllocClientStatusComplete
	h.State.UpsertAllocs(&done)
	process(t, h, h.NewEval(j, structs.EvalTriggerJobRegister))
	if got := len(live(h, j)); got != 2 {
		t.Fatalf("live %d", got)
	}
	if d := h.LastPlan(); d != nil && len(d.NodeAllocation) > 0 {
		for _, as := range d.NodeAllocation {
			for _, a := range as {
				if a.Name == done.Name && a.ID != done.ID {
					t.Fatalf("complete batch alloc replaced: %+v", a)
				}
			}
		}
	}
	// A failed batch alloc is rescheduled (default: 1 attempt, 5s delay).
	h.State.UpsertAllocs(schedtest.Failed(allocs[1], h.Clock.Now()))
	h.Clock.Advance(6 * time.Second)
	process(t, h, h.NewEval(j, structs.EvalTriggerRetryFailedAlloc))
	if got := len(live(h, j)); got != 2 {
		t.Fatalf("after reschedule live %d", got)
	}
}
