package state

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/structs"
)

func newStore(tb testing.TB) *StateStore {
	tb.Helper()
	s, err := NewStateStore()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// write runs fn in one write transaction and commits it if fn succeeds.
func write(tb testing.TB, s *StateStore, fn func(*Txn) error) {
	tb.Helper()
	if err := tryWrite(s, fn); err != nil {
		tb.Fatal(err)
	}
}

func tryWrite(s *StateStore, fn func(*Txn) error) error {
	txn := s.Txn(true)
	defer txn.Abort()
	if err := fn(txn); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

func job(ns, id, typ string) *structs.Job {
	return &structs.Job{
		ID: id, Name: id, Namespace: ns, Type: typ, Priority: 50,
		TaskGroups: []*structs.TaskGroup{{Name: "g", Count: 1, Tasks: []*structs.Task{{Name: "t", Driver: "docker"}}}},
	}
}

func eval(id, ns, jobID string) *structs.Evaluation {
	return &structs.Evaluation{ID: id, Namespace: ns, JobID: jobID, Status: structs.EvalStatusPending}
}

func alloc(id, ns, jobID, nodeID, client string) *structs.Allocation {
	return &structs.Allocation{
		ID: id, Namespace: ns, JobID: jobID, EvalID: "eval-" + jobID, NodeID: nodeID, TaskGroup: "g",
		DesiredStatus: structs.AllocDesiredStatusRun, ClientStatus: client,
	}
}

// tables dumps every table, the index table included.
func tables(tb testing.TB, s *StateStore) map[string][]any {
	tb.Helper()
	txn := s.db.Txn(false)
	out := map[string][]any{}
	for _, table := range append([]string{tableIndex}, Tables...) {
		it, err := txn.Get(table, "id")
		if err != nil {
			tb.Fatal(err)
		}
		out[table] = []any{}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out[table] = append(out[table], raw)
		}
	}
	return out
}

func diffStores(tb testing.TB, a, b *StateStore) string {
	tb.Helper()
	return cmp.Diff(tables(tb, a), tables(tb, b))
}

// populate writes two namespaces with jobs, evals and allocs at indexes 1-5.
func populate(tb testing.TB, s *StateStore) {
	tb.Helper()
	write(tb, s, func(t *Txn) error {
		return t.UpsertNamespaces(1, []*structs.Namespace{{Name: "prod"}, {Name: "pro"}})
	})
	write(tb, s, func(t *Txn) error {
		for _, j := range []*structs.Job{
			job("default", "web", structs.JobTypeService),
			job("default", "web-2", structs.JobTypeService),
			job("default", "api", structs.JobTypeService),
			job("prod", "web", structs.JobTypeBatch),
		} {
			if err := t.UpsertJob(2, j); err != nil {
				return err
			}
		}
		return nil
	})
	write(tb, s, func(t *Txn) error {
		return t.UpsertNode(3, &structs.Node{ID: "node-1", Name: "client-1", Status: structs.NodeStatusReady})
	})
	write(tb, s, func(t *Txn) error {
		return t.UpsertEvals(4, []*structs.Evaluation{
			eval("ab-1", "default", "web"), eval("ab-2", "default", "web-2"),
			eval("cd-1", "prod", "web"), eval("ab-3", "prod", "web"),
		})
	})
	write(tb, s, func(t *Txn) error {
		return t.UpsertAllocs(5, []*structs.Allocation{
			alloc("aa-1", "default", "web", "node-1", structs.AllocClientStatusRunning),
			alloc("aa-2", "default", "web-2", "node-1", structs.AllocClientStatusPending),
			alloc("bb-1", "prod", "web", "node-1", structs.AllocClientStatusFailed),
			alloc("aa-3", "prod", "web", "", structs.AllocClientStatusComplete),
		})
	})
}
