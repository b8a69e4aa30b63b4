package state

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

func TestNamespaceDelete(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s) // "prod" has a job; "pro" (a prefix of it) has none
	before := tables(t, s)
	for _, tc := range []struct {
		names []string
		want  error
	}{
		{[]string{structs.DefaultNamespace}, ErrInvalidRequest},
		{[]string{"pro", structs.DefaultNamespace}, ErrInvalidRequest},
		{[]string{"prod"}, ErrConflict},
		{[]string{"pro", "prod"}, ErrConflict},
		{[]string{"ghost"}, ErrNotFound},
	} {
		err := tryWrite(s, func(txn *Txn) error { return txn.DeleteNamespaces(10, tc.names) })
		if !errors.Is(err, tc.want) {
			t.Errorf("delete %v = %v, want %v", tc.names, err, tc.want)
		}
	}
	if d := cmp.Diff(before, tables(t, s)); d != "" {
		t.Fatalf("refused deletes changed the store:\n%s", d)
	}

	write(t, s, func(txn *Txn) error { return txn.DeleteNamespaces(11, []string{"pro"}) })
	ws := memdb.NewWatchSet()
	if ns, _ := s.NamespaceByName(ws, "pro"); ns != nil {
		t.Fatal("pro not deleted")
	}
	if ns, _ := s.NamespaceByName(ws, "prod"); ns == nil {
		t.Fatal("deleting pro removed prod")
	}
	if got := s.Index(ws, TableNamespaces); got != 11 {
		t.Errorf("namespaces index = %d, want 11", got)
	}

	// Once its jobs are purged, prod can go.
	write(t, s, func(txn *Txn) error { return txn.DeleteJob(12, "prod", "web") })
	write(t, s, func(txn *Txn) error { return txn.DeleteNamespaces(13, []string{"prod"}) })
	nss, _ := s.Namespaces(ws)
	if len(nss) != 1 || nss[0].Name != structs.DefaultNamespace {
		t.Fatalf("namespaces = %v, want only default", nss)
	}
}

func TestNamespaceUpsertKeepsCreateIndex(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	in := &structs.Namespace{Name: "team", Meta: map[string]string{"a": "1"}}
	write(t, s, func(txn *Txn) error { return txn.UpsertNamespaces(3, []*structs.Namespace{in}) })
	in.Meta["a"] = "mutated by caller"
	write(t, s, func(txn *Txn) error {
		return txn.UpsertNamespaces(5, []*structs.Namespace{{Name: "team", Description: "v2"}})
	})
	ns, _ := s.NamespaceByName(memdb.NewWatchSet(), "team")
	if ns.CreateIndex != 3 || ns.ModifyIndex != 5 || ns.Description != "v2" {
		t.Fatalf("namespace = %+v", ns)
	}
	if err := tryWrite(s, func(txn *Txn) error { return txn.UpsertNamespaces(6, []*structs.Namespace{nil}) }); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("upsert of a null namespace = %v", err)
	}
}

func ids[T any](xs []T, id func(T) string) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

func TestLists(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	ws := memdb.NewWatchSet()
	jobID := func(j *structs.Job) string { return j.Namespace + "/" + j.ID }
	evalID := func(e *structs.Evaluation) string { return e.Namespace + "/" + e.ID }
	allocID := func(a *structs.Allocation) string { return a.Namespace + "/" + a.ID }

	for _, tc := range []struct {
		ns, prefix string
		want       []string
	}{
		{"default", "", []string{"default/api", "default/web", "default/web-2"}},
		{"default", "web", []string{"default/web", "default/web-2"}},
		{"default", "web-", []string{"default/web-2"}},
		{"prod", "", []string{"prod/web"}},
		{"pro", "", []string{}},
		{"ghost", "", []string{}},
		{"*", "", []string{"default/api", "default/web", "default/web-2", "prod/web"}},
		{"*", "web", []string{"default/web", "default/web-2", "prod/web"}},
		{"*", "x", []string{}},
	} {
		got, err := s.Jobs(ws, tc.ns, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.want, ids(got, jobID)); d != "" {
			t.Errorf("Jobs(%q, %q) (-want +got):\n%s", tc.ns, tc.prefix, d)
		}
	}
	for _, tc := range []struct {
		ns, prefix string
		want       []string
	}{
		{"default", "", []string{"default/ab-1", "default/ab-2"}},
		{"prod", "", []string{"prod/ab-3", "prod/cd-1"}},
		{"prod", "cd", []string{"prod/cd-1"}},
		{"*", "ab", []string{"default/ab-1", "default/ab-2", "prod/ab-3"}},
		{"*", "", []string{"default/ab-1", "default/ab-2", "prod/ab-3", "prod/cd-1"}},
		{"pro", "", []string{}},
	} {
		got, err := s.Evals(ws, tc.ns, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.want, ids(got, evalID)); d != "" {
			t.Errorf("Evals(%q, %q) (-want +got):\n%s", tc.ns, tc.prefix, d)
		}
	}
	for _, tc := range []struct {
		ns, prefix string
		want       []string
	}{
		{"default", "", []string{"default/aa-1", "default/aa-2"}},
		{"prod", "", []string{"prod/aa-3", "prod/bb-1"}},
		{"prod", "bb", []string{"prod/bb-1"}},
		{"*", "aa", []string{"default/aa-1", "default/aa-2", "prod/aa-3"}},
		{"*", "", []string{"default/aa-1", "default/aa-2", "prod/aa-3", "prod/bb-1"}},
	} {
		got, err := s.Allocs(ws, tc.ns, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.want, ids(got, allocID)); d != "" {
			t.Errorf("Allocs(%q, %q) (-want +got):\n%s", tc.ns, tc.prefix, d)
		}
	}

	// By job: exact job ID match ("web" must not pick up "web-2"), per namespace.
	evs, _ := s.EvalsByJob(ws, "default", "web")
	if d := cmp.Diff([]string{"default/ab-1"}, ids(evs, evalID)); d != "" {
		t.Errorf("EvalsByJob(default, web):\n%s", d)
	}
	als, _ := s.AllocsByJob(ws, "default", "web")
	if d := cmp.Diff([]string{"default/aa-1"}, ids(als, allocID)); d != "" {
		t.Errorf("AllocsByJob(default, web):\n%s", d)
	}
	als, _ = s.AllocsByNode(ws, "node-1")
	if d := cmp.Diff([]string{"default/aa-1", "default/aa-2", "prod/bb-1"}, ids(als, allocID)); d != "" {
		t.Errorf("AllocsByNode(node-1):\n%s", d)
	}
	// An evaluation belongs to one job: its allocations are that job's
	// allocations carrying its ID, whatever other jobs' allocations say.
	txn := s.Txn(true)
	if err := txn.UpsertEvals(100, []*structs.Evaluation{{ID: "eval-web", Namespace: "default", JobID: "web"}}); err != nil {
		t.Fatal(err)
	}
	txn.Commit()
	als, _ = s.AllocsByEval(ws, "eval-web")
	if got := ids(als, allocID); !slices.Equal(got, []string{"default/aa-1"}) {
		t.Errorf("AllocsByEval(eval-web) = %v", got)
	}
	if als, _ = s.AllocsByEval(ws, "no-such-eval"); len(als) != 0 {
		t.Errorf("AllocsByEval of an unknown eval = %v", ids(als, allocID))
	}
	nodes, _ := s.Nodes(ws, "node")
	if len(nodes) != 1 {
		t.Errorf("Nodes(node) = %d nodes", len(nodes))
	}
}

func TestJobStatusAndSummary(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	ws := memdb.NewWatchSet()
	for _, tc := range []struct{ ns, id, status string }{
		{"default", "web", structs.JobStatusRunning},
		{"default", "web-2", structs.JobStatusRunning},
		{"default", "api", structs.JobStatusPending},
		// every alloc terminal, but an evaluation of it is not: pending, as Nomad
		{"prod", "web", structs.JobStatusPending},
	} {
		j, _ := s.JobByID(ws, tc.ns, tc.id)
		if j.Status != tc.status {
			t.Errorf("%s/%s status = %q, want %q", tc.ns, tc.id, j.Status, tc.status)
		}
	}
	j, _ := s.JobByID(ws, "prod", "web")
	sum, err := s.JobSummary(ws, j)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]structs.TaskGroupSummary{"g": {Failed: 1, Complete: 1}}
	if d := cmp.Diff(want, sum.Summary); d != "" || sum.ModifyIndex != 5 {
		t.Errorf("summary (-want +got):\n%s\nmodify index %d", d, sum.ModifyIndex)
	}
}

func TestUpsertJobRejectsNullGroups(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	j := job("default", "x", structs.JobTypeService)
	j.TaskGroups = append(j.TaskGroups, nil)
	k := job("default", "y", structs.JobTypeService)
	k.TaskGroups[0].Tasks = append(k.TaskGroups[0].Tasks, nil)
	for _, bad := range []*structs.Job{j, k} {
		if err := tryWrite(s, func(txn *Txn) error { return txn.UpsertJob(1, bad) }); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("upsert of %s = %v, want ErrInvalidRequest", bad.ID, err)
		}
	}
}

func TestUpsertRejectsNullElements(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	if err := tryWrite(s, func(txn *Txn) error { return txn.UpsertEvals(1, []*structs.Evaluation{nil}) }); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("null eval: %v", err)
	}
	if err := tryWrite(s, func(txn *Txn) error { return txn.UpsertAllocs(1, []*structs.Allocation{nil}) }); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("null alloc: %v", err)
	}
}
