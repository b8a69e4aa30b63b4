package fsm

import (
	"bytes"
	"errors"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// FuzzApply feeds arbitrary bytes as a log entry's Data to an FSM holding
// the fixture. Apply must never panic, and each entry is exactly one of:
// applied (no error, FSM running), rejected (error, no state change, FSM
// running) or fatal (ErrStopped, no state change, FSM stopped). Whatever
// state results must survive a snapshot round trip unchanged and be
// readable.
func FuzzApply(f *testing.F) {
	for _, e := range fixture() {
		f.Add(encode(f, e.typ, e.payload))
		flagged := encode(f, e.typ|IgnoreUnknownTypeFlag, e.payload)
		flagged[1]++
		f.Add(flagged)
	}
	for _, seed := range []string{
		"", "\x01", "\x01\x01", "\x01\x01null", "\x05\x01{\"Allocs\":[null]}", "\x03\x01{\"Evals\":[null]}",
		"\x09\x01{\"Namespaces\":[null]}", "\x01\x01{\"Job\":{\"ID\":\"x\",\"Namespace\":\"default\",\"TaskGroups\":[null]}}",
		"\x7f\x01{}", "\xff\x01{}", "\x02\x02{}",
	} {
		f.Add([]byte(seed))
	}
	// Every input starts from the fixture: a copy-on-write snapshot of one
	// store built once, far cheaper than replaying the fixture each time.
	base := fixtureFSM(f)
	baseBytes := persist(f, base.FSM)
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := newTestFSM(t)
		fsm.state.Store(&base.State().Snapshot().StateStore)
		res := fsm.Apply(logAt(100, data))
		afterBytes := persist(t, fsm.FSM)

		if err, ok := res.(error); ok {
			if errors.Is(err, ErrStopped) != (fsm.Fatal() != nil) {
				t.Fatalf("Apply = %v but Fatal() = %v", err, fsm.Fatal())
			}
			if !bytes.Equal(baseBytes, afterBytes) {
				t.Fatalf("entry that failed (%v) changed state:\n%s", err, gocmp.Diff(dump(t, base.State()), dump(t, fsm.State())))
			}
		} else if fsm.Fatal() != nil {
			t.Fatalf("Apply = %v but the FSM stopped: %v", res, fsm.Fatal())
		}
		if n := fsm.fatals.Load(); (n == 1) != (fsm.Fatal() != nil) || n > 1 {
			t.Fatalf("OnFatal called %d times, Fatal() = %v", n, fsm.Fatal())
		}
		if bytes.Equal(baseBytes, afterBytes) {
			return // nothing new to round-trip or read
		}

		other := newTestFSM(t)
		restoreInto(t, other.FSM, afterBytes)
		if d := gocmp.Diff(dump(t, fsm.State()), dump(t, other.State())); d != "" {
			t.Fatalf("state changed across snapshot/restore (-applied +restored):\n%s", d)
		}

		// Reads of what was stored must not panic either.
		ws := memdb.NewWatchSet()
		s := fsm.State()
		jobs, err := s.Jobs(ws, structs.AllNamespacesSentinel, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if _, err := s.JobSummary(ws, j); err != nil {
				t.Fatal(err)
			}
			if _, err := s.EvalsByJob(ws, j.Namespace, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		nodes, _ := s.Nodes(ws, "")
		for _, n := range nodes {
			if _, err := s.AllocsByNode(ws, n.ID); err != nil {
				t.Fatal(err)
			}
		}
	})
}
