package state

import (
	"testing"

	"github.com/berth-dev/berth/structs"
)

// The summary's Queued comes from the newest processed evaluation, as
// Nomad reports allocations the scheduler could not place yet.
func TestJobSummaryQueuedFromNewestEval(t *testing.T) {
	s, err := NewStateStore()
	if err != nil {
		t.Fatal(err)
	}
	job := &structs.Job{ID: "web", Name: "web", Namespace: structs.DefaultNamespace, Type: structs.JobTypeService,
		TaskGroups: []*structs.TaskGroup{{Name: "g", Count: 3, Tasks: []*structs.Task{{Name: "t", Driver: "exec"}}}}}
	txn := s.Txn(true)
	if err := txn.UpsertJob(10, job); err != nil {
		t.Fatal(err)
	}
	evals := []*structs.Evaluation{
		{ID: "e1", Namespace: job.Namespace, JobID: job.ID, Status: structs.EvalStatusComplete, QueuedAllocations: map[string]int{"g": 3}},
		{ID: "e2", Namespace: job.Namespace, JobID: job.ID, Status: structs.EvalStatusPending, QueuedAllocations: map[string]int{"g": 9}},
	}
	if err := txn.UpsertEvals(11, evals); err != nil {
		t.Fatal(err)
	}
	txn.Commit()
	stored, _ := s.JobByID(nil, job.Namespace, job.ID)
	sum, err := s.JobSummary(nil, stored)
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.Summary["g"].Queued; got != 3 {
		t.Fatalf("queued = %d, want 3 (from the complete eval, not the pending one)", got)
	}

	txn = s.Txn(true)
	if err := txn.UpsertEvals(12, []*structs.Evaluation{{ID: "e3", Namespace: job.Namespace, JobID: job.ID,
		Status: structs.EvalStatusComplete, QueuedAllocations: map[string]int{"g": 0}}}); err != nil {
		t.Fatal(err)
	}
	txn.Commit()
	if sum, _ = s.JobSummary(nil, stored); sum.Summary["g"].Queued != 0 {
		t.Fatalf("queued = %d after a later eval placed everything, want 0", sum.Summary["g"].Queued)
	}
}
