package fsm

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

// testFSM is an FSM that counts its OnFatal calls.
type testFSM struct {
	*FSM
	fatals atomic.Int32
}

func newTestFSM(tb testing.TB) *testFSM {
	tb.Helper()
	tf := &testFSM{}
	f, err := New(Config{OnFatal: func(error) { tf.fatals.Add(1) }})
	if err != nil {
		tb.Fatalf("new fsm: %v", err)
	}
	tf.FSM = f
	return tf
}

// entry is one command of a scenario.
type entry struct {
	typ     MessageType
	payload any
}

func encode(tb testing.TB, t MessageType, payload any) []byte {
	tb.Helper()
	data, err := Encode(t, payload)
	if err != nil {
		tb.Fatalf("encode %s: %v", t, err)
	}
	return data
}

func logAt(index uint64, data []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// applyAt applies one command at index and returns what Apply returned.
func applyAt(tb testing.TB, f *FSM, index uint64, t MessageType, payload any) any {
	tb.Helper()
	return f.Apply(logAt(index, encode(tb, t, payload)))
}

// mustApply applies one command at index and fails if it returned an error.
func mustApply(tb testing.TB, f *FSM, index uint64, t MessageType, payload any) any {
	tb.Helper()
	res := applyAt(tb, f, index, t, payload)
	if err, ok := res.(error); ok {
		tb.Fatalf("apply %s at %d: %v", t, index, err)
	}
	return res
}

// applyAll applies entries at indexes first, first+1, ...
func applyAll(tb testing.TB, f *FSM, first uint64, entries []entry) {
	tb.Helper()
	for i, e := range entries {
		mustApply(tb, f, first+uint64(i), e.typ, e.payload)
	}
}

// stateDump is every object of every table, the table-index table included,
// in the order of each table's id index.
type stateDump map[string][]any

func dump(tb testing.TB, s *state.StateStore) stateDump {
	tb.Helper()
	txn := s.Txn(false)
	defer txn.Abort()
	d := stateDump{}
	for _, table := range append([]string{"index"}, state.Tables...) {
		it, err := txn.Get(table, "id")
		if err != nil {
			tb.Fatalf("dump %s: %v", table, err)
		}
		d[table] = []any{}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			d[table] = append(d[table], raw)
		}
	}
	return d
}

func diffStates(tb testing.TB, a, b *state.StateStore) string {
	tb.Helper()
	return cmp.Diff(dump(tb, a), dump(tb, b))
}

// persist snapshots f the way raft does and returns the stream.
func persist(tb testing.TB, f *FSM) []byte {
	tb.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		tb.Fatalf("snapshot: %v", err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		tb.Fatalf("persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		tb.Fatalf("persist left sink closed=%v cancelled=%v, want closed and not cancelled", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

func restoreInto(tb testing.TB, f *FSM, data []byte) {
	tb.Helper()
	if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		tb.Fatalf("restore: %v", err)
	}
}

// Fixed IDs and times: nothing in a scenario depends on the clock.
const (
	nodeID1  = "5b0c1a8e-3f7a-4d5c-9a0e-6c1d2b3a4f01"
	nodeID2  = "5b0c1a8e-3f7a-4d5c-9a0e-6c1d2b3a4f02"
	evalID1  = "e0000000-0000-4000-8000-000000000001"
	evalID2  = "e0000000-0000-4000-8000-000000000002"
	evalID3  = "e0000000-0000-4000-8000-000000000003"
	evalID4  = "e0000000-0000-4000-8000-000000000004"
	evalID5  = "e0000000-0000-4000-8000-000000000005"
	allocID1 = "a0000000-0000-4000-8000-000000000001"
	allocID2 = "a0000000-0000-4000-8000-000000000002"
	allocID3 = "a0000000-0000-4000-8000-000000000003"
	allocID4 = "a0000000-0000-4000-8000-000000000004"
)

var t0 = time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC)

func unixAt(step int) int64 { return t0.Add(time.Duration(step) * time.Second).UnixNano() }

func testJob(namespace, id, typ string, count int) *structs.Job {
	j := &structs.Job{
		ID:          id,
		Name:        id,
		Namespace:   namespace,
		Type:        typ,
		Priority:    50,
		Datacenters: []string{"dc1"},
		Meta:        map[string]string{"owner": "team-" + id},
		TaskGroups: []*structs.TaskGroup{{
			Name:  id + "-group",
			Count: count,
			Tasks: []*structs.Task{{
				Name:   id + "-task",
				Driver: "docker",
				Config: map[string]any{"image": "nginx:1.27", "ports": []any{"http"}},
				Env:    map[string]string{"MODE": "prod"},
			}},
		}},
	}
	j.Canonicalize()
	return j
}

func testEval(id, namespace, jobID, typ, trigger, status string, step int) *structs.Evaluation {
	return &structs.Evaluation{
		ID:          id,
		Namespace:   namespace,
		Priority:    50,
		Type:        typ,
		TriggeredBy: trigger,
		JobID:       jobID,
		Status:      status,
		CreateTime:  unixAt(step),
		ModifyTime:  unixAt(step),
	}
}

func testAlloc(id, namespace, jobID, evalID, nodeID, group, client string, step int) *structs.Allocation {
	return &structs.Allocation{
		ID:            id,
		Namespace:     namespace,
		EvalID:        evalID,
		Name:          jobID + "." + group + "[0]",
		NodeID:        nodeID,
		NodeName:      "client-1",
		JobID:         jobID,
		TaskGroup:     group,
		DesiredStatus: structs.AllocDesiredStatusRun,
		ClientStatus:  client,
		TaskStates: map[string]*structs.TaskState{
			jobID + "-task": {State: "running", StartedAt: t0.Add(time.Duration(step) * time.Second)},
		},
		CreateTime: unixAt(step),
		ModifyTime: unixAt(step),
	}
}

func testNode(id, name string) *structs.Node {
	return &structs.Node{
		ID:         id,
		SecretID:   "secret-" + id,
		Datacenter: "dc1",
		Name:       name,
		HTTPAddr:   "10.0.0.1:4646",
		NodePool:   "default",
		NodeClass:  "general",
		Attributes: map[string]string{"kernel.name": "linux", "cpu.arch": "amd64"},
		Meta:       map[string]string{"rack": "r1"},
		NodeResources: &structs.NodeResources{
			Cpu:            structs.NodeCpuResources{CpuShares: 4000, TotalCpuCores: 4},
			Memory:         structs.NodeMemoryResources{MemoryMB: 8192},
			Disk:           structs.NodeDiskResources{DiskMB: 50000},
			MinDynamicPort: 20000,
			MaxDynamicPort: 32000,
		},
		Drivers: map[string]*structs.DriverInfo{
			"docker": {Detected: true, Healthy: true, HealthDescription: "healthy", UpdateTime: t0},
		},
		Status:          structs.NodeStatusReady,
		StatusUpdatedAt: unixAt(0),
	}
}

// fixture is a realistic history that uses every command type. It is
// applied from index 1; the snapshot-v1 test data is generated from it.
func fixture() []entry {
	webV1 := testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 3)
	webV1.SubmitTime = unixAt(7)
	report := testJob("prod", "report", structs.JobTypeBatch, 1)
	report.SubmitTime = unixAt(4)
	web := testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 2)
	web.SubmitTime = unixAt(3)
	api := testJob(structs.DefaultNamespace, "api", structs.JobTypeService, 1)
	api.SubmitTime = unixAt(15)

	alloc3Done := testAlloc(allocID3, "prod", "report", evalID2, nodeID1, "report-group", structs.AllocClientStatusComplete, 8)
	return append([]entry{
		/* 1 */ {NamespaceUpsertType, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{
			{Name: "prod", Description: "production", Meta: map[string]string{"team": "payments"}},
		}}},
		/* 2 */ {NodeRegisterType, &NodeRegisterCommand{Node: testNode(nodeID1, "client-1")}},
		/* 3 */ {JobRegisterType, &JobRegisterCommand{Job: web,
			Eval: testEval(evalID1, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerJobRegister, structs.EvalStatusPending, 3)}},
		/* 4 */ {JobRegisterType, &JobRegisterCommand{Job: report,
			Eval: testEval(evalID2, "prod", "report", structs.JobTypeBatch, structs.EvalTriggerJobRegister, structs.EvalStatusPending, 4)}},
		/* 5 */ {AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			testAlloc(allocID1, structs.DefaultNamespace, "web", evalID1, nodeID1, "web-group", structs.AllocClientStatusRunning, 5),
			testAlloc(allocID2, structs.DefaultNamespace, "web", evalID1, nodeID1, "web-group", structs.AllocClientStatusPending, 5),
			testAlloc(allocID3, "prod", "report", evalID2, nodeID1, "report-group", structs.AllocClientStatusRunning, 5),
		}}},
		/* 6 */ {EvalUpsertType, &EvalUpsertCommand{Evals: []*structs.Evaluation{
			testEval(evalID1, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerJobRegister, structs.EvalStatusComplete, 6),
			testEval(evalID2, "prod", "report", structs.JobTypeBatch, structs.EvalTriggerJobRegister, structs.EvalStatusComplete, 6),
		}}},
		/* 7 */ {JobRegisterType, &JobRegisterCommand{Job: webV1, EnforceIndex: true, JobModifyIndex: 3,
			Eval: testEval(evalID3, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerJobRegister, structs.EvalStatusPending, 7)}},
		/* 8 */ {AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			testAlloc(allocID4, structs.DefaultNamespace, "web", evalID3, nodeID1, "web-group", structs.AllocClientStatusPending, 8),
			alloc3Done,
		}}},
		/* 9 */ {NodeUpdateStatusType, &NodeUpdateStatusCommand{NodeID: nodeID1, Status: structs.NodeStatusReady, UpdatedAt: unixAt(9)}},
		/* 10 */ {NamespaceUpsertType, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{{Name: "staging"}}}},
		/* 11 */ {NamespaceDeleteType, &NamespaceDeleteCommand{Names: []string{"staging"}}},
		/* 12 */ {NodeRegisterType, &NodeRegisterCommand{Node: testNode(nodeID2, "client-2")}},
		/* 13 */ {NodeDeregisterType, &NodeDeregisterCommand{NodeIDs: []string{nodeID2}}},
		/* 14 */ {EvalDeleteType, &EvalDeleteCommand{EvalIDs: []string{evalID2}}},
		/* 15 */ {JobRegisterType, &JobRegisterCommand{Job: api}},
		/* 16 */ {JobDeregisterType, &JobDeregisterCommand{Namespace: structs.DefaultNamespace, JobID: "api", Purge: true, SubmitTime: unixAt(16),
			Eval: testEval(evalID4, structs.DefaultNamespace, "api", structs.JobTypeService, structs.EvalTriggerJobDeregister, structs.EvalStatusPending, 16)}},
		/* 17 */ {JobDeregisterType, &JobDeregisterCommand{Namespace: "prod", JobID: "report", SubmitTime: unixAt(17),
			Eval: testEval(evalID5, "prod", "report", structs.JobTypeBatch, structs.EvalTriggerJobDeregister, structs.EvalStatusPending, 17)}},
	}, append(schedulingFixture(), drainFixture()...)...)
}

// fixtureFSM returns an FSM with the whole fixture applied.
func fixtureFSM(tb testing.TB) *testFSM {
	tb.Helper()
	f := newTestFSM(tb)
	applyAll(tb, f.FSM, 1, fixture())
	return f
}
