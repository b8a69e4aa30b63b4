package server

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/structs"
)

type enqueueRecorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *enqueueRecorder) enqueue(e *structs.Evaluation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, e.ID)
}

func (r *enqueueRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ids
	r.ids = nil
	return out
}

func blockedEval(job string, snapshot uint64, classes map[string]bool) *structs.Evaluation {
	e := mkEval(job, 50, structs.JobTypeService)
	e.Status = structs.EvalStatusBlocked
	e.SnapshotIndex = snapshot
	e.ClassEligibility = classes
	return e
}

func newTestBlocked() (*blockedEvals, *enqueueRecorder) {
	r := &enqueueRecorder{}
	b := newBlockedEvals(slog.New(slog.DiscardHandler), r.enqueue)
	b.SetEnabled(true)
	return b, r
}

func TestBlockedEvalsUnblockByClass(t *testing.T) {
	b, r := newTestBlocked()
	gpu := blockedEval("a", 10, map[string]bool{"gpu": true, "small": false})
	small := blockedEval("b", 10, map[string]bool{"small": true, "gpu": false})
	escaped := blockedEval("c", 10, nil)
	escaped.EscapedComputedClass = true
	b.Block(gpu)
	b.Block(small)
	b.Block(escaped)
	if b.Len() != 3 {
		t.Fatalf("tracking %d", b.Len())
	}
	b.Unblock("gpu", 20)
	got := r.take()
	if len(got) != 2 || !contains(got, gpu.ID) || !contains(got, escaped.ID) {
		t.Fatalf("unblocked %v, want the gpu and the escaped eval", got)
	}
	// an unknown class may fit anything
	b.Unblock("other", 21)
	if got := r.take(); len(got) != 1 || got[0] != small.ID {
		t.Fatalf("unblocked %v on an unknown class", got)
	}
	if b.Len() != 0 {
		t.Fatalf("still tracking %d", b.Len())
	}
}

func TestBlockedEvalsOnePerJobAndMissedUnblock(t *testing.T) {
	b, r := newTestBlocked()
	old := blockedEval("a", 10, map[string]bool{"x": true})
	newer := blockedEval("a", 12, map[string]bool{"x": true})
	b.Block(old)
	b.Block(newer)
	if b.Len() != 1 {
		t.Fatalf("tracking %d evals of one job", b.Len())
	}
	if d := b.Duplicates(); len(d) != 1 || d[0].ID != old.ID {
		t.Fatalf("duplicates %v, want the older eval", d)
	}
	b.Block(old) // stale, arrives late
	if d := b.Duplicates(); len(d) != 1 || d[0].ID != old.ID || b.Len() != 1 {
		t.Fatal("an older eval must not replace a newer one")
	}

	// capacity appeared at 30 in class x; an eval that planned on 25 and
	// blocks only now missed it and is released at once
	b.Unblock("x", 30)
	r.take()
	late := blockedEval("b", 25, map[string]bool{"x": true})
	b.Block(late)
	if got := r.take(); len(got) != 1 || got[0] != late.ID {
		t.Fatalf("missed unblock not detected: %v", got)
	}
	// one that planned after it stays blocked
	current := blockedEval("c", 31, map[string]bool{"x": true})
	b.Block(current)
	if got := r.take(); len(got) != 0 || b.Len() != 1 {
		t.Fatalf("eval planned after the change released: %v", got)
	}
	b.Untrack(current.ID)
	if b.Len() != 0 {
		t.Fatal("untrack")
	}
}

// TestBlockedEvalsWatchCapacity drives the capacity watcher through a real
// FSM: a node becoming ready and allocations becoming terminal unblock.
func TestBlockedEvalsWatchCapacity(t *testing.T) {
	h := newApplierHarness(t)
	b, r := newTestBlocked()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.watchCapacity(ctx, h.fsm.State) }()
	defer func() { cancel(); <-done }()

	n := testNode("n1", 1)
	n.ComputedClass = "c1"
	n.Status = structs.NodeStatusInit
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: n})
	job := testJobForPlan("web")
	h.registerJob(job)
	plan := &structs.Plan{EvalID: generateUUID(), Job: job}
	a := testAlloc(job, "n1")
	a.EvalID = plan.EvalID
	h.mustApply(fsm.AllocUpsertType, &fsm.AllocUpsertCommand{Allocs: []*structs.Allocation{withJob(a, job)}})

	e := blockedEval("other", h.fsm.State().LatestIndex(), map[string]bool{"c1": true})
	b.Block(e)
	time.Sleep(2 * minAllocScanInterval)
	if got := r.take(); len(got) != 0 {
		t.Fatalf("unblocked without a change: %v", got)
	}
	idx := h.mustApply(fsm.NodeUpdateStatusType, &fsm.NodeUpdateStatusCommand{NodeID: "n1", Status: structs.NodeStatusReady})
	waitUnblocked(t, r, e.ID)

	e2 := blockedEval("other2", idx, map[string]bool{"c1": true})
	b.Block(e2)
	stopped := *a
	stopped.DesiredStatus = structs.AllocDesiredStatusStop
	h.mustApply(fsm.AllocUpsertType, &fsm.AllocUpsertCommand{Allocs: []*structs.Allocation{&stopped}})
	waitUnblocked(t, r, e2.ID)
}

func withJob(a *structs.Allocation, job *structs.Job) *structs.Allocation {
	c := *a
	c.Job = job
	return &c
}

func waitUnblocked(t *testing.T, r *enqueueRecorder, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		found := contains(r.ids, id)
		r.mu.Unlock()
		if found {
			r.take()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("eval %s not unblocked", id)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
