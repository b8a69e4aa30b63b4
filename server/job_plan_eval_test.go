package server_test

import (
	"slices"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

func findNomadTask(d *nomad.JobDiff, group, task string) *nomad.TaskDiff {
	for _, g := range d.TaskGroups {
		if g.Name != group {
			continue
		}
		for _, t := range g.Tasks {
			if t.Name == task {
				return t
			}
		}
	}
	return nil
}

func findNomadField(fs []*nomad.FieldDiff, name string) *nomad.FieldDiff {
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// schedulingCluster is one server with schedulers and three nodes.
func schedulingCluster(t *testing.T) (*server.Server, *nomad.Client) {
	t.Helper()
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	for i := 1; i <= 3; i++ {
		registerNode(t, cl, schedNode(i))
	}
	return s, nomadClient(t, "http://"+s.HTTPAddr())
}

// The plan endpoint's Diff decodes into Nomad's JobDiff with field-level
// changes and the annotations of what the scheduler would do.
func TestNomadCompatJobPlanDiff(t *testing.T) {
	s, nc := schedulingCluster(t)
	job := nomadServiceJob("web")
	job.TaskGroups[0].Tasks[0].Require(&nomad.Resources{CPU: new(100), MemoryMB: new(128)})
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 15*time.Second, "2 allocs of web", func() bool { return len(liveAllocs(t, s, "web")) == 2 })

	// unchanged: None
	plan, _, err := nc.Jobs().Plan(job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Diff == nil || plan.Diff.Type != "None" || plan.Diff.ID != "web" {
		t.Fatalf("unchanged job diff: %+v", plan.Diff)
	}

	// new image: destructive, with the config field's old and new values
	job.TaskGroups[0].Tasks[0].SetConfig("image", "redis:8")
	plan, _, err = nc.Jobs().Plan(job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Diff == nil || plan.Diff.Type != "Edited" {
		t.Fatalf("image change diff: %+v", plan.Diff)
	}
	task := findNomadTask(plan.Diff, "web", "app")
	if task == nil || task.Type != "Edited" || !slices.Equal(task.Annotations, []string{"forces create/destroy update"}) {
		t.Fatalf("task diff %+v", task)
	}
	var image *nomad.FieldDiff
	for _, o := range task.Objects {
		if o.Name == "Config" {
			image = findNomadField(o.Fields, "image")
		}
	}
	if image == nil || image.Type != "Edited" || image.Old != "redis:7" || image.New != "redis:8" {
		t.Fatalf("image field %+v", image)
	}
	if g := plan.Diff.TaskGroups[0]; g.Updates["create/destroy update"] == 0 {
		t.Fatalf("group updates %v", g.Updates)
	}

	// count only: in place, with the create annotation on Count
	job.TaskGroups[0].Tasks[0].SetConfig("image", "redis:7")
	job.TaskGroups[0].Count = new(3)
	plan, _, err = nc.Jobs().Plan(job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := plan.Diff.TaskGroups[0]
	count := findNomadField(g.Fields, "Count")
	if count == nil || count.Old != "2" || count.New != "3" || !slices.Equal(count.Annotations, []string{"forces create"}) {
		t.Fatalf("count field %+v", count)
	}
	if g.Updates["create"] != 1 || g.Tasks[0].Type != "None" {
		t.Fatalf("count change group %+v", g)
	}
}

// EvaluateWithOpts(ForceReschedule) replaces a failed allocation whose
// reschedule policy would never replace it; a plain evaluation does not.
func TestNomadCompatForceReschedule(t *testing.T) {
	s, nc := schedulingCluster(t)
	job := nomadServiceJob("web")
	job.TaskGroups[0].Count = new(1)
	job.TaskGroups[0].Tasks[0].Require(&nomad.Resources{CPU: new(100), MemoryMB: new(128)})
	job.TaskGroups[0].ReschedulePolicy = &nomad.ReschedulePolicy{Attempts: new(0), Interval: new(time.Hour), Unlimited: new(false)}
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 15*time.Second, "1 alloc of web", func() bool { return len(liveAllocs(t, s, "web")) == 1 })
	first := liveAllocs(t, s, "web")[0]
	failed := &structs.Allocation{ID: first.ID, ClientStatus: structs.AllocClientStatusFailed, ClientDescription: "task failed"}
	if _, err := client(t, s).ClientNodes().UpdateAllocations("secret-"+first.NodeName, []*structs.Allocation{failed}, nil); err != nil {
		t.Fatal(err)
	}
	waitEvalDone := func(id string) {
		servertest.WaitFor(t, 10*time.Second, "eval "+id+" to complete", func() bool {
			e, _ := s.State().EvalByID(nil, id)
			return e != nil && e.Status == structs.EvalStatusComplete
		})
	}
	servertest.WaitFor(t, 10*time.Second, "the alloc to be failed", func() bool { return len(liveAllocs(t, s, "web")) == 0 })

	evalID, _, err := nc.Jobs().EvaluateWithOpts("web", nomad.EvalOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitEvalDone(evalID)
	if got := len(liveAllocs(t, s, "web")); got != 0 {
		t.Fatalf("plain evaluation rescheduled past the policy: %d live", got)
	}

	evalID, _, err = nc.Jobs().EvaluateWithOpts("web", nomad.EvalOptions{ForceReschedule: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := s.State().AllocByID(nil, first.ID)
	if stored == nil || !stored.DesiredTransition.ShouldForceReschedule() {
		t.Fatalf("failed alloc not marked for forced reschedule: %+v", stored)
	}
	waitEvalDone(evalID)
	servertest.WaitFor(t, 10*time.Second, "a replacement", func() bool {
		live := liveAllocs(t, s, "web")
		return len(live) == 1 && live[0].PreviousAllocation == first.ID
	})
}
