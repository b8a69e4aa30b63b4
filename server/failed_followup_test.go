package server

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

func TestFailedFollowUpRetriesLater(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	failed := &structs.Evaluation{ID: "e1", Namespace: "prod", Priority: 70, Type: structs.JobTypeBatch,
		JobID: "nightly", Status: structs.EvalStatusFailed}
	f := failedFollowUp(failed, "e2", now, 90*time.Second)
	if f.ID != "e2" || f.PreviousEval != "e1" || f.JobID != "nightly" || f.Namespace != "prod" ||
		f.Type != structs.JobTypeBatch || f.Priority != 70 {
		t.Fatalf("follow-up does not belong to the failed evaluation's job: %+v", f)
	}
	if f.Status != structs.EvalStatusPending || f.TriggeredBy != structs.EvalTriggerFailedFollowUp {
		t.Fatalf("follow-up status %q trigger %q", f.Status, f.TriggeredBy)
	}
	if want := now.Add(failedFollowUpBaseWait + 90*time.Second); !f.WaitUntil.Equal(want) {
		t.Fatalf("follow-up waits until %s, want %s", f.WaitUntil, want)
	}
}
