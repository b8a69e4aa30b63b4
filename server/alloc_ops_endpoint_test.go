package server_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

// alloc stop marks the allocation to migrate with an evaluation; the
// scheduler stops it and places a replacement.
func TestAllocStopReplacesAlloc(t *testing.T) {
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	registerNode(t, cl, schedNode(1))
	registerNode(t, cl, schedNode(2))
	job := schedJob("web", 2)
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 10*time.Second, "2 allocations placed", func() bool { return len(liveAllocs(t, s, job.ID)) == 2 })
	victim := liveAllocs(t, s, job.ID)[0]

	resp, _, err := cl.Allocations().Stop(victim.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.EvalID == "" || resp.Index == 0 {
		t.Fatalf("stop response = %+v", resp)
	}
	if e, _ := s.State().EvalByID(nil, resp.EvalID); e == nil || e.TriggeredBy != structs.EvalTriggerAllocStop || e.JobID != job.ID {
		t.Fatalf("stop eval = %+v", e)
	}
	servertest.WaitFor(t, 10*time.Second, "allocation stopped and replaced", func() bool {
		a, _ := s.State().AllocByID(nil, victim.ID)
		if a.DesiredStatus != structs.AllocDesiredStatusStop || !a.DesiredTransition.ShouldMigrate() {
			return false
		}
		live := liveAllocs(t, s, job.ID)
		for _, r := range live {
			if r.PreviousAllocation == victim.ID && r.Name == victim.Name {
				return len(live) == 2
			}
		}
		return false
	})
	if _, _, err := cl.Allocations().Stop("00000000-0000-4000-8000-0000000000ff", nil); !api.IsNotFound(err) {
		t.Fatalf("stop of unknown alloc: %v", err)
	}
}
