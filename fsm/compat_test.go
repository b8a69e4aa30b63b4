package fsm

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

var update = flag.Bool("update", false, "write fsm/testdata/snapshot-v1.jsonl from fixture() (only while state.SnapshotVersion is 1)")

const snapshotV1 = "snapshot-v1.jsonl"

// TestSnapshotV1StillRestores restores the snapshot written by the first
// release and checks its content field by field. The file is frozen: a
// later release that changes the stream adds snapshot-vN.jsonl next to it
// and keeps this test passing (through a migration in state.Restore).
func TestSnapshotV1StillRestores(t *testing.T) {
	path := filepath.Join("testdata", snapshotV1)
	if *update {
		if state.SnapshotVersion != 1 {
			t.Fatalf("%s is frozen: state.SnapshotVersion is %d; add a snapshot-v%d.jsonl instead", path, state.SnapshotVersion, state.SnapshotVersion)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, persist(t, fixtureFSM(t).FSM), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (generate it with go test ./fsm -run TestSnapshotV1StillRestores -update): %v", path, err)
	}
	f := newTestFSM(t)
	restoreInto(t, f.FSM, data)
	s := f.State()
	ws := memdb.NewWatchSet()

	if got := s.LatestIndex(); got != 17 {
		t.Errorf("LatestIndex = %d, want 17", got)
	}
	for table, want := range map[string]uint64{
		state.TableNamespaces: 11, state.TableNodes: 13, state.TableJobs: 17,
		state.TableEvals: 17, state.TableAllocs: 8,
	} {
		if got := s.Index(ws, table); got != want {
			t.Errorf("Index(%s) = %d, want %d", table, got, want)
		}
	}

	nss, _ := s.Namespaces(ws)
	if len(nss) != 2 || nss[0].Name != "default" || nss[1].Name != "prod" {
		t.Fatalf("namespaces = %v, want default and prod", names(nss, func(n *structs.Namespace) string { return n.Name }))
	}
	if p := nss[1]; p.Description != "production" || p.Meta["team"] != "payments" || p.CreateIndex != 1 {
		t.Errorf("prod namespace = %+v", p)
	}

	nodes, _ := s.Nodes(ws, "")
	if len(nodes) != 1 {
		t.Fatalf("nodes = %v, want only %s", names(nodes, func(n *structs.Node) string { return n.ID }), nodeID1)
	}
	if n := nodes[0]; n.ID != nodeID1 || n.Name != "client-1" || n.Status != structs.NodeStatusReady ||
		n.StatusUpdatedAt != unixAt(9) || n.SchedulingEligibility != structs.NodeSchedulingEligible ||
		n.CreateIndex != 2 || n.ModifyIndex != 9 || n.NodeResources == nil || n.NodeResources.Memory.MemoryMB != 8192 ||
		n.Drivers["docker"] == nil || !n.Drivers["docker"].Healthy || !n.Drivers["docker"].UpdateTime.Equal(t0) {
		t.Errorf("node = %+v", n)
	}

	jobs, _ := s.Jobs(ws, structs.AllNamespacesSentinel, "")
	if len(jobs) != 2 || jobs[0].ID != "web" || jobs[1].ID != "report" {
		t.Fatalf("jobs = %v, want web then report", names(jobs, func(j *structs.Job) string { return j.Namespace + "/" + j.ID }))
	}
	web, report := jobs[0], jobs[1]
	if web.Namespace != "default" || web.Type != structs.JobTypeService || web.Priority != 50 || web.Version != 1 ||
		web.CreateIndex != 3 || web.JobModifyIndex != 7 || web.ModifyIndex != 7 || web.Status != structs.JobStatusRunning ||
		web.Stop || web.SubmitTime != unixAt(7) || len(web.TaskGroups) != 1 || web.TaskGroups[0].Count != 3 ||
		web.TaskGroups[0].Name != "web-group" || len(web.TaskGroups[0].Tasks) != 1 ||
		web.TaskGroups[0].Tasks[0].Name != "web-task" || web.TaskGroups[0].Tasks[0].Driver != "docker" ||
		web.TaskGroups[0].Tasks[0].Config["image"] != "nginx:1.27" {
		t.Errorf("web = %+v", web)
	}
	if report.Namespace != "prod" || report.Type != structs.JobTypeBatch || report.Version != 1 || !report.Stop ||
		report.Status != structs.JobStatusDead || report.CreateIndex != 4 || report.JobModifyIndex != 17 ||
		report.SubmitTime != unixAt(17) {
		t.Errorf("report = %+v", report)
	}

	evals, _ := s.Evals(ws, structs.AllNamespacesSentinel, "")
	wantEvals := map[string]struct {
		status         string
		create, modify uint64
		jobModify      uint64
	}{
		evalID1: {structs.EvalStatusComplete, 3, 6, 0}, // the upsert at 6 carried no JobModifyIndex
		evalID3: {structs.EvalStatusPending, 7, 7, 7},
		evalID4: {structs.EvalStatusPending, 16, 16, 16},
		evalID5: {structs.EvalStatusPending, 17, 17, 17},
	}
	if len(evals) != len(wantEvals) {
		t.Errorf("evals = %v", names(evals, func(e *structs.Evaluation) string { return e.ID }))
	}
	for _, e := range evals {
		w, ok := wantEvals[e.ID]
		if !ok || e.Status != w.status || e.CreateIndex != w.create || e.ModifyIndex != w.modify || e.JobModifyIndex != w.jobModify {
			t.Errorf("eval %s = %+v", e.ID, e)
		}
	}

	allocs, _ := s.Allocs(ws, structs.AllNamespacesSentinel, "")
	wantAllocs := map[string]struct {
		job, client    string
		create, modify uint64
	}{
		allocID1: {"web", structs.AllocClientStatusRunning, 5, 5},
		allocID2: {"web", structs.AllocClientStatusPending, 5, 5},
		allocID3: {"report", structs.AllocClientStatusComplete, 5, 8},
		allocID4: {"web", structs.AllocClientStatusPending, 8, 8},
	}
	if len(allocs) != len(wantAllocs) {
		t.Errorf("allocs = %v", names(allocs, func(a *structs.Allocation) string { return a.ID }))
	}
	for _, a := range allocs {
		w, ok := wantAllocs[a.ID]
		if !ok || a.JobID != w.job || a.ClientStatus != w.client || a.CreateIndex != w.create || a.ModifyIndex != w.modify ||
			a.NodeID != nodeID1 || a.TaskStates[a.JobID+"-task"] == nil {
			t.Errorf("alloc %s = %+v", a.ID, a)
		}
	}

	// The restored FSM goes on: a changed web keeps its CreateIndex and
	// gets version 2; a new job starts at version 0.
	webV2 := testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 4)
	mustApply(t, f.FSM, 18, JobRegisterType, &JobRegisterCommand{Job: webV2, EnforceIndex: true, JobModifyIndex: 7})
	mustApply(t, f.FSM, 19, JobRegisterType, &JobRegisterCommand{Job: testJob("prod", "fresh", structs.JobTypeBatch, 1)})
	if j, _ := f.State().JobByID(ws, "default", "web"); j.Version != 2 || j.CreateIndex != 3 || j.JobModifyIndex != 18 {
		t.Errorf("web after restore and update = v%d create %d jobmodify %d", j.Version, j.CreateIndex, j.JobModifyIndex)
	}
	if j, _ := f.State().JobByID(ws, "prod", "fresh"); j == nil || j.Version != 0 || j.CreateIndex != 19 {
		t.Errorf("fresh job after restore = %+v", j)
	}
}

func names[T any](xs []T, name func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = name(x)
	}
	return out
}
