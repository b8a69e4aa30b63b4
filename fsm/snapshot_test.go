package fsm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// TestSnapshotRoundTripEveryCommand applies, for every registered command
// type, the fixture up to that type's last entry to FSM A, snapshots it
// through a raft sink, restores into FSM B and compares every table and the
// table indexes. B then applies the rest of the fixture like A, which proves
// a restored FSM goes on exactly as one that replayed the log.
func TestSnapshotRoundTripEveryCommand(t *testing.T) {
	t.Parallel()
	fx := fixture()
	types := slices.SortedFunc(maps.Keys(commands), cmp.Compare)
	for _, typ := range types {
		t.Run(typ.String(), func(t *testing.T) {
			t.Parallel()
			last := -1
			for i, e := range fx {
				if e.typ == typ {
					last = i
				}
			}
			if last < 0 {
				t.Fatalf("command type %d (%s) has no entry in fixture(): add a realistic one", typ, typ)
			}
			a := newTestFSM(t)
			applyAll(t, a.FSM, 1, fx[:last+1])

			b := newTestFSM(t)
			restoreInto(t, b.FSM, persist(t, a.FSM))
			if d := diffStates(t, a.State(), b.State()); d != "" {
				t.Fatalf("restored state differs after %s (-A +B):\n%s", typ, d)
			}
			if got, want := b.State().LatestIndex(), uint64(last+1); got != want {
				t.Errorf("restored LatestIndex = %d, want %d", got, want)
			}

			rest := fx[last+1:]
			applyAll(t, a.FSM, uint64(last+2), rest)
			applyAll(t, b.FSM, uint64(last+2), rest)
			if d := diffStates(t, a.State(), b.State()); d != "" {
				t.Fatalf("state differs after applying the rest to both (-A +B):\n%s", d)
			}
		})
	}
}

// TestSnapshotIsPointInTime: what Snapshot captured does not change with
// later applies, even before Persist runs.
func TestSnapshotIsPointInTime(t *testing.T) {
	t.Parallel()
	a := newTestFSM(t)
	applyAll(t, a.FSM, 1, fixture()[:3])
	want := dump(t, a.State())

	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, a.FSM, 4, fixture()[3:])
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	b := newTestFSM(t)
	restoreInto(t, b.FSM, sink.Bytes())
	if d := gocmp.Diff(want, dump(t, b.State())); d != "" {
		t.Fatalf("snapshot saw later writes (-at snapshot +restored):\n%s", d)
	}
}

type failingSink struct{ memSink }

func (s *failingSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSnapshotPersistErrorCancelsSink(t *testing.T) {
	t.Parallel()
	a := fixtureFSM(t)
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink failingSink
	if err := snap.Persist(&sink); err == nil {
		t.Fatal("Persist to a failing sink succeeded")
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink cancelled=%v closed=%v, want cancelled and not closed", sink.cancelled, sink.closed)
	}
}

// TestRestoreReplacesStateAndFailsCleanly: a restore replaces everything
// (objects absent from the snapshot go), and a bad stream leaves the FSM's
// state as it was.
func TestRestoreReplacesStateAndFailsCleanly(t *testing.T) {
	t.Parallel()
	small := newTestFSM(t)
	applyAll(t, small.FSM, 1, fixture()[:2])
	smallSnap := persist(t, small.FSM)

	f := fixtureFSM(t)
	before := dump(t, f.State())
	for name, data := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("not a snapshot"),
		"truncated": smallSnap[:len(smallSnap)/2],
		"no-end":    smallSnap[:bytes.LastIndexByte(smallSnap[:len(smallSnap)-1], '\n')+1],
	} {
		if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
			t.Errorf("restore of %s stream succeeded", name)
		}
		if d := gocmp.Diff(before, dump(t, f.State())); d != "" {
			t.Fatalf("failed restore (%s) changed state:\n%s", name, d)
		}
	}
	if f.Fatal() != nil {
		t.Fatalf("a failed restore stopped the FSM: %v", f.Fatal())
	}

	restoreInto(t, f.FSM, smallSnap)
	if d := diffStates(t, small.State(), f.State()); d != "" {
		t.Fatalf("restore did not replace the state (-snapshot +restored):\n%s", d)
	}
	if j, _ := f.State().JobByID(nil, structs.DefaultNamespace, "web"); j != nil {
		t.Fatal("job from before the restore survived it")
	}
}

// TestRestoreWakesBlockingQueries: a query blocked on the old store wakes
// when Restore swaps the store, and re-runs on the new one.
func TestRestoreWakesBlockingQueries(t *testing.T) {
	t.Parallel()
	src := fixtureFSM(t)
	snap := persist(t, src.FSM)

	f := newTestFSM(t)
	applyAll(t, f.FSM, 1, fixture()[:1])
	minIndex := f.State().Index(memdb.NewWatchSet(), state.TableJobs) // 0: no jobs yet

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		index uint64
		jobs  int
		err   error
	}
	done := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		var once bool
		var n int
		idx, err := state.Blocking(ctx, f.State, minIndex+1, func(ws memdb.WatchSet, s *state.StateStore) (uint64, error) {
			if !once {
				once = true
				close(started)
			}
			jobs, err := s.Jobs(ws, structs.AllNamespacesSentinel, "")
			n = len(jobs)
			return s.Index(ws, state.TableJobs), err
		})
		done <- result{idx, n, err}
	}()
	<-started
	select {
	case r := <-done:
		t.Fatalf("blocking query returned before the restore: %+v", r)
	default:
	}
	restoreInto(t, f.FSM, snap)
	select {
	case r := <-done:
		wantJobs, _ := src.State().Jobs(nil, structs.AllNamespacesSentinel, "")
		wantIndex := src.State().Index(nil, state.TableJobs)
		if r.err != nil || r.jobs != len(wantJobs) || r.index != wantIndex {
			t.Fatalf("after restore got index=%d jobs=%d err=%v, want %d, %d, nil", r.index, r.jobs, r.err, wantIndex, len(wantJobs))
		}
	case <-ctx.Done():
		t.Fatal("blocking query did not wake on restore")
	}
}
