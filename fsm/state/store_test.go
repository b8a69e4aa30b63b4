package state

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

type blockResult struct {
	index uint64
	err   error
	runs  int
}

// startJobsQuery runs a blocking query on the jobs table in a goroutine.
func startJobsQuery(ctx context.Context, current func() *StateStore, minIndex uint64) <-chan blockResult {
	done := make(chan blockResult, 1)
	go func() {
		runs := 0
		idx, err := Blocking(ctx, current, minIndex, func(ws memdb.WatchSet, s *StateStore) (uint64, error) {
			runs++
			if _, err := s.Jobs(ws, structs.DefaultNamespace, ""); err != nil {
				return 0, err
			}
			return s.Index(ws, TableJobs), nil
		})
		done <- blockResult{idx, err, runs}
	}()
	return done
}

func returned(done <-chan blockResult) (blockResult, bool) {
	select {
	case r := <-done:
		return r, true
	default:
		return blockResult{}, false
	}
}

// TestBlockingWakesOnRelevantTable: a query on jobs sleeps through writes
// to other tables and wakes on a jobs write. synctest.Wait makes "it is
// still blocked" exact rather than a guess after a sleep.
func TestBlockingWakesOnRelevantTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t)
		populate(t, s)
		minIndex := s.Index(memdb.NewWatchSet(), TableJobs)
		done := startJobsQuery(t.Context(), func() *StateStore { return s }, minIndex)

		synctest.Wait()
		if r, ok := returned(done); ok {
			t.Fatalf("query at its min index returned at once: %+v", r)
		}
		write(t, s, func(txn *Txn) error {
			return txn.UpsertNode(10, &structs.Node{ID: "node-2", Status: structs.NodeStatusReady})
		})
		write(t, s, func(txn *Txn) error { return txn.UpsertNamespaces(11, []*structs.Namespace{{Name: "other"}}) })
		synctest.Wait()
		if r, ok := returned(done); ok {
			t.Fatalf("jobs query woke on a nodes/namespaces write: %+v", r)
		}
		write(t, s, func(txn *Txn) error { return txn.UpsertJob(12, job("default", "new", structs.JobTypeService)) })
		synctest.Wait()
		r, ok := returned(done)
		if !ok {
			t.Fatal("jobs query did not wake on a jobs write")
		}
		if r.err != nil || r.index != 12 || r.runs != 2 {
			t.Fatalf("got %+v, want index 12 after 2 runs", r)
		}
	})
}

func TestBlockingReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t)
		populate(t, s)
		cur := func() *StateStore { return s }
		// jobs were last written at 5 (status refresh by the alloc upsert)
		for _, minIndex := range []uint64{0, 4} { // 0: not blocking; 4: the table is past it
			done := startJobsQuery(t.Context(), cur, minIndex)
			synctest.Wait()
			if r, ok := returned(done); !ok || r.index != 5 || r.runs != 1 || r.err != nil {
				t.Fatalf("minIndex %d: got %+v returned=%v, want index 5 after 1 run", minIndex, r, ok)
			}
		}
	})
}

func TestBlockingTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t)
		populate(t, s)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		done := startJobsQuery(ctx, func() *StateStore { return s }, 5)
		synctest.Wait()
		if _, ok := returned(done); ok {
			t.Fatal("returned before the timeout")
		}
		r := <-done // the fake clock jumps to the deadline
		if r.err != nil || r.index != 5 || time.Since(start) != 5*time.Minute {
			t.Fatalf("got %+v after %v, want index 5, nil error after 5m", r, time.Since(start))
		}
	})
}

func TestBlockingPropagatesError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t)
		boom := errors.New("boom")
		_, err := Blocking(t.Context(), func() *StateStore { return s }, 100, func(memdb.WatchSet, *StateStore) (uint64, error) {
			return 0, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestBlockingWakesOnAbandon: after a restore swaps the store and abandons
// the old one, a blocked query re-runs on the new store.
func TestBlockingWakesOnAbandon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		old := newStore(t)
		populate(t, old)
		write(t, old, func(txn *Txn) error { return txn.UpsertJob(20, job("default", "late", structs.JobTypeService)) })
		snap := old.Snapshot()
		var buf bytes.Buffer
		if err := old.Snapshot().Persist(&buf); err != nil {
			t.Fatal(err)
		}
		restored, err := Restore(&buf)
		if err != nil {
			t.Fatal(err)
		}

		var current atomic.Pointer[StateStore]
		current.Store(old)
		done := startJobsQuery(t.Context(), current.Load, 20)
		synctest.Wait()
		if _, ok := returned(done); ok {
			t.Fatal("returned before abandon")
		}
		// Same index in the restored store: the query wakes, re-runs on the
		// new store and blocks again.
		current.Store(restored)
		old.Abandon()
		old.Abandon() // idempotent
		synctest.Wait()
		if _, ok := returned(done); ok {
			t.Fatal("returned after abandon although the index did not move")
		}
		write(t, old, func(txn *Txn) error { return txn.UpsertJob(30, job("default", "ghost", structs.JobTypeService)) })
		synctest.Wait()
		if _, ok := returned(done); ok {
			t.Fatal("woke on a write to the abandoned store")
		}
		write(t, restored, func(txn *Txn) error { return txn.UpsertJob(21, job("default", "next", structs.JobTypeService)) })
		synctest.Wait()
		r, ok := returned(done)
		if !ok || r.index != 21 || r.runs != 3 {
			t.Fatalf("got %+v returned=%v, want index 21 after 3 runs (first, after abandon, after write)", r, ok)
		}
		select {
		case <-snap.AbandonCh():
		default:
			t.Fatal("a snapshot of an abandoned store does not see the abandon")
		}
	})
}

// TestSnapshotIsolation: writes after Snapshot() show in the store, never
// in the snapshot, nor in what the snapshot persists.
func TestSnapshotIsolation(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	snap := s.Snapshot()
	before := tables(t, &snap.StateStore)

	write(t, s, func(txn *Txn) error { return txn.UpsertJob(6, job("default", "later", structs.JobTypeService)) })
	write(t, s, func(txn *Txn) error { return txn.DeleteJob(7, "default", "api") })
	write(t, s, func(txn *Txn) error {
		return txn.UpsertAllocs(8, []*structs.Allocation{alloc("aa-1", "default", "web", "node-1", structs.AllocClientStatusComplete)})
	})

	ws := memdb.NewWatchSet()
	if j, _ := snap.JobByID(ws, "default", "later"); j != nil {
		t.Error("snapshot sees a job written after it")
	}
	if j, _ := snap.JobByID(ws, "default", "api"); j == nil {
		t.Error("snapshot lost a job deleted after it")
	}
	if a, _ := snap.AllocByID(ws, "aa-1"); a.ClientStatus != structs.AllocClientStatusRunning {
		t.Errorf("snapshot sees alloc status %q", a.ClientStatus)
	}
	if got := snap.Index(ws, TableJobs); got != 5 {
		t.Errorf("snapshot jobs index = %d, want 5", got)
	}
	if got := s.Index(ws, TableJobs); got != 8 {
		t.Errorf("store jobs index = %d, want 8 (job status refresh at 8)", got)
	}
	if j, _ := s.JobByID(ws, "default", "later"); j == nil {
		t.Error("store does not see its own write")
	}

	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffStores(t, &StateStore{db: snap.db}, restored); d != "" {
		t.Fatalf("persisted snapshot differs from the snapshot (-snap +restored):\n%s", d)
	}
	if d := cmp.Diff(before, tables(t, &snap.StateStore)); d != "" {
		t.Fatalf("snapshot changed after later writes:\n%s", d)
	}
}
