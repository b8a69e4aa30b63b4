package server_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

// Pausing the eval broker holds every evaluation pending; resuming
// schedules them.
func TestPauseEvalBroker(t *testing.T) {
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	registerNode(t, cl, schedNode(1))

	cfg := structs.DefaultSchedulerConfiguration()
	cfg.PauseEvalBroker = true
	if _, _, err := cl.Operator().SchedulerSetConfiguration(cfg, nil); err != nil {
		t.Fatal(err)
	}
	resp, _, err := cl.Jobs().Register(schedJob("held", 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	// bounded observation: the eval stays pending while paused
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		e, _ := s.State().EvalByID(nil, resp.EvalID)
		if e == nil || e.Status != structs.EvalStatusPending {
			t.Fatalf("evaluation processed while the broker is paused: %+v", e)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(liveAllocs(t, s, "held")); n != 0 {
		t.Fatalf("%d allocations placed while paused", n)
	}

	cfg.PauseEvalBroker = false
	if _, _, err := cl.Operator().SchedulerSetConfiguration(cfg, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 10*time.Second, "placements after resuming", func() bool {
		return len(liveAllocs(t, s, "held")) == 2
	})
}
