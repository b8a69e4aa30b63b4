package scheduler_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

// A failed allocation whose reschedule is forced is replaced at once,
// inside its policy's delay and past its attempts.
func TestForceRescheduleIgnoresPolicy(t *testing.T) {
	h := cluster(t, 3)
	j := jobWithCount("web", 1)
	j.TaskGroups[0].ReschedulePolicy = &structs.ReschedulePolicy{
		Attempts: 0, Interval: time.Hour, Delay: time.Hour, DelayFunction: structs.DelayFunctionConstant,
	}
	run(t, h, j)
	first := live(h, j)[0]
	failed := schedtest.Failed(first, h.Clock.Now())
	h.State.UpsertAllocs(failed)

	// Without the transition: never rescheduled (0 attempts).
	process(t, h, h.NewEval(j, structs.EvalTriggerJobRegister))
	if got := len(live(h, j)); got != 0 {
		t.Fatalf("rescheduled without force: %d live", got)
	}

	forced := *failed
	yes := true
	forced.DesiredTransition = structs.DesiredTransition{ForceReschedule: &yes}
	h.State.UpsertAllocs(&forced)
	process(t, h, h.NewEval(j, structs.EvalTriggerJobRegister))
	allocs := live(h, j)
	if len(allocs) != 1 || allocs[0].PreviousAllocation != first.ID {
		t.Fatalf("forced reschedule: %+v", allocs)
	}
	if allocs[0].NodeID == first.NodeID {
		t.Fatalf("replacement on the failed node %s", first.NodeName)
	}
}
