package fsm

import (
	"errors"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// unknownType is a command number no build has used yet.
const unknownType MessageType = 0x7f

func TestRegistry(t *testing.T) {
	t.Parallel()
	names := map[string]MessageType{}
	for typ, spec := range commands {
		if typ&IgnoreUnknownTypeFlag != 0 {
			t.Errorf("command %s registered with the ignore flag set: register the bare number", spec.name)
		}
		if prev, dup := names[spec.name]; dup {
			t.Errorf("types %d and %d share the name %q", prev, typ, spec.name)
		}
		names[spec.name] = typ
		if spec.since < 1 || spec.since > Version {
			t.Errorf("%s: since %d outside [1, %d]", spec.name, spec.since, Version)
		}
		if spec.payloadVersion < 1 {
			t.Errorf("%s: payload version %d, want >= 1", spec.name, spec.payloadVersion)
		}
		if got, ok := Since(typ); !ok || got != spec.since {
			t.Errorf("Since(%s) = %d, %v", spec.name, got, ok)
		}
		if got, ok := Since(typ | IgnoreUnknownTypeFlag); !ok || got != spec.since {
			t.Errorf("Since(%s|ignore) = %d, %v", spec.name, got, ok)
		}
		if typ.String() != spec.name {
			t.Errorf("String() = %q, want %q", typ.String(), spec.name)
		}
	}
	if _, ok := commands[unknownType]; ok {
		t.Fatalf("type %d is now registered: pick another unknownType for these tests", unknownType)
	}
	if _, ok := Since(unknownType); ok {
		t.Error("Since reports an unknown type as known")
	}
	if _, err := Encode(unknownType, struct{}{}); err == nil {
		t.Error("Encode of an unknown type succeeded")
	}
}

func TestEncodeEnvelope(t *testing.T) {
	t.Parallel()
	data := encode(t, NodeDeregisterType, &NodeDeregisterCommand{NodeIDs: []string{"n"}})
	if data[0] != byte(NodeDeregisterType) || data[1] != commands[NodeDeregisterType].payloadVersion {
		t.Fatalf("header = % x", data[:2])
	}
	var got NodeDeregisterCommand
	if err := decodePayload(data[1], data[2:], &got); err != nil || len(got.NodeIDs) != 1 || got.NodeIDs[0] != "n" {
		t.Fatalf("payload decodes to %+v (%v)", got, err)
	}
}

// Entries written by builds whose payloads were JSON (version 1) still
// apply.
func TestJSONPayloadVersionStillApplies(t *testing.T) {
	t.Parallel()
	f, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte{byte(NamespaceUpsertType), payloadVersionJSON}, `{"Namespaces":[{"Name":"legacy"}]}`...)
	if res := f.Apply(&raft.Log{Index: 5, Type: raft.LogCommand, Data: data}); res != nil {
		if err, ok := res.(error); ok {
			t.Fatalf("apply JSON payload: %v", err)
		}
	}
	if ns, _ := f.State().NamespaceByName(nil, "legacy"); ns == nil {
		t.Fatal("namespace from a JSON payload was not applied")
	}
}

// TestUnintelligibleEntryStopsFSM: every kind of entry this build cannot
// understand stops the FSM for good, loudly and without touching the state.
func TestUnintelligibleEntryStopsFSM(t *testing.T) {
	t.Parallel()
	valid := encode(t, NamespaceUpsertType, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{{Name: "later"}}})
	newer := encode(t, NamespaceUpsertType, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{{Name: "newer"}}})
	newer[1]++
	for name, data := range map[string][]byte{
		"unknown type":           append([]byte{byte(unknownType), 1}, `{}`...),
		"newer payload version":  newer,
		"corrupt json":           append([]byte{byte(JobRegisterType), 1}, `{"Job":{"ID":"x"`...),
		"wrong json shape":       append([]byte{byte(EvalUpsertType), 1}, `{"Evals":"not a list"}`...),
		"empty entry":            {},
		"shorter than header":    {byte(JobRegisterType)},
		"header without payload": {byte(JobRegisterType), 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := fixtureFSM(t)
			before := dump(t, f.State())

			res := f.Apply(logAt(100, data))
			err, _ := res.(error)
			if !errors.Is(err, ErrStopped) {
				t.Fatalf("Apply = %v, want an error wrapping ErrStopped", res)
			}
			if f.Fatal() == nil || !errors.Is(f.Fatal(), ErrStopped) {
				t.Fatalf("Fatal() = %v", f.Fatal())
			}
			if n := f.fatals.Load(); n != 1 {
				t.Fatalf("OnFatal called %d times, want 1", n)
			}

			// Nothing after it applies, and OnFatal is not called again.
			res = f.Apply(logAt(101, valid))
			if err, _ := res.(error); !errors.Is(err, ErrStopped) {
				t.Fatalf("Apply after stop = %v, want ErrStopped", res)
			}
			f.Apply(logAt(102, data))
			if n := f.fatals.Load(); n != 1 {
				t.Fatalf("OnFatal called %d times, want 1", n)
			}
			if d := gocmp.Diff(before, dump(t, f.State())); d != "" {
				t.Fatalf("a stopped FSM's state changed:\n%s", d)
			}
		})
	}
}

// TestIgnorableUnknownEntryIsSkipped: an entry flagged safe to ignore is
// skipped without a state change, and the FSM goes on.
func TestIgnorableUnknownEntryIsSkipped(t *testing.T) {
	t.Parallel()
	knownNewer := encode(t, NamespaceUpsertType|IgnoreUnknownTypeFlag, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{{Name: "newer"}}})
	knownNewer[1]++
	for name, data := range map[string][]byte{
		"unknown type":              append([]byte{byte(unknownType | IgnoreUnknownTypeFlag), 1}, `{"anything":1}`...),
		"unknown type garbage":      append([]byte{byte(unknownType | IgnoreUnknownTypeFlag), 9}, "\xff\x00garbage"...),
		"known type, newer version": knownNewer,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := fixtureFSM(t)
			before := dump(t, f.State())
			if res := f.Apply(logAt(100, data)); res != nil {
				t.Fatalf("Apply = %v, want nil", res)
			}
			if f.Fatal() != nil || f.fatals.Load() != 0 {
				t.Fatalf("skipped entry stopped the FSM: %v", f.Fatal())
			}
			if d := gocmp.Diff(before, dump(t, f.State())); d != "" {
				t.Fatalf("skipped entry changed state:\n%s", d)
			}
			mustApply(t, f.FSM, 101, NamespaceUpsertType, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{{Name: "after"}}})
			if ns, _ := f.State().NamespaceByName(nil, "after"); ns == nil || ns.CreateIndex != 101 {
				t.Fatalf("command after the skipped one not applied: %+v", ns)
			}
		})
	}

	// A known command with the flag and a version it reads is applied.
	f := newTestFSM(t)
	mustApply(t, f.FSM, 1, NamespaceUpsertType|IgnoreUnknownTypeFlag, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{{Name: "flagged"}}})
	if ns, _ := f.State().NamespaceByName(nil, "flagged"); ns == nil {
		t.Fatal("known command with the ignore flag was not applied")
	}
}

func TestNonCommandLogsAreIgnored(t *testing.T) {
	t.Parallel()
	f := fixtureFSM(t)
	before := dump(t, f.State())
	for _, typ := range []raft.LogType{raft.LogNoop, raft.LogConfiguration, raft.LogBarrier} {
		if res := f.Apply(&raft.Log{Index: 100, Type: typ, Data: []byte{0xff}}); res != nil {
			t.Errorf("Apply(%v) = %v, want nil", typ, res)
		}
	}
	if f.Fatal() != nil {
		t.Fatalf("FSM stopped: %v", f.Fatal())
	}
	if d := gocmp.Diff(before, dump(t, f.State())); d != "" {
		t.Fatalf("non-command log changed state:\n%s", d)
	}
}

// TestRejectedCommandLeavesNoTrace: a command the state refuses returns the
// reason, writes nothing (objects and table indexes unchanged) and does not
// stop the FSM.
func TestRejectedCommandLeavesNoTrace(t *testing.T) {
	t.Parallel()
	noNS := testJob("nowhere", "orphan", structs.JobTypeService, 1)
	cases := []struct {
		name string
		typ  MessageType
		cmd  any
		want error
	}{
		{"job register without job", JobRegisterType, &JobRegisterCommand{}, state.ErrInvalidRequest},
		{"job register into missing namespace", JobRegisterType, &JobRegisterCommand{Job: noNS,
			Eval: testEval("e-orphan", "nowhere", "orphan", "service", structs.EvalTriggerJobRegister, structs.EvalStatusPending, 1)}, state.ErrInvalidRequest},
		{"job register with invalid eval", JobRegisterType, &JobRegisterCommand{
			Job:  testJob(structs.DefaultNamespace, "new-job", structs.JobTypeService, 1),
			Eval: &structs.Evaluation{Namespace: structs.DefaultNamespace, JobID: "new-job"}}, state.ErrInvalidRequest},
		{"enforce index mismatch", JobRegisterType, &JobRegisterCommand{
			Job: testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 9), EnforceIndex: true, JobModifyIndex: 3}, state.ErrConflict},
		{"enforce index 0 on existing job", JobRegisterType, &JobRegisterCommand{
			Job: testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 9), EnforceIndex: true}, state.ErrConflict},
		{"enforce index on missing job", JobRegisterType, &JobRegisterCommand{
			Job: testJob(structs.DefaultNamespace, "ghost", structs.JobTypeService, 1), EnforceIndex: true, JobModifyIndex: 7}, state.ErrConflict},
		{"deregister unknown job", JobDeregisterType, &JobDeregisterCommand{Namespace: structs.DefaultNamespace, JobID: "ghost",
			Eval: testEval("e-ghost", structs.DefaultNamespace, "ghost", "service", structs.EvalTriggerJobDeregister, structs.EvalStatusPending, 1)}, state.ErrNotFound},
		{"deregister job in wrong namespace", JobDeregisterType, &JobDeregisterCommand{Namespace: "prod", JobID: "web", Purge: true}, state.ErrNotFound},
		{"deregister with invalid eval", JobDeregisterType, &JobDeregisterCommand{Namespace: structs.DefaultNamespace, JobID: "web", Purge: true,
			Eval: &structs.Evaluation{ID: " "}}, state.ErrInvalidRequest},
		{"eval upsert, second invalid", EvalUpsertType, &EvalUpsertCommand{Evals: []*structs.Evaluation{
			testEval("e-good", structs.DefaultNamespace, "web", "service", structs.EvalTriggerJobRegister, structs.EvalStatusPending, 1),
			{Namespace: structs.DefaultNamespace, JobID: "web"},
		}}, state.ErrInvalidRequest},
		{"alloc upsert, second without ID", AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			testAlloc("a-good", structs.DefaultNamespace, "web", evalID3, nodeID1, "web-group", structs.AllocClientStatusRunning, 1),
			{Namespace: structs.DefaultNamespace, JobID: "web"},
		}}, state.ErrInvalidRequest},
		{"node register without node", NodeRegisterType, &NodeRegisterCommand{}, state.ErrInvalidRequest},
		{"node register without ID", NodeRegisterType, &NodeRegisterCommand{Node: &structs.Node{Name: "x"}}, state.ErrInvalidRequest},
		{"node deregister, second unknown", NodeDeregisterType, &NodeDeregisterCommand{NodeIDs: []string{nodeID1, "ghost"}}, state.ErrNotFound},
		{"node status of unknown node", NodeUpdateStatusType, &NodeUpdateStatusCommand{NodeID: "ghost", Status: structs.NodeStatusDown}, state.ErrNotFound},
		{"delete default namespace", NamespaceDeleteType, &NamespaceDeleteCommand{Names: []string{structs.DefaultNamespace}}, state.ErrInvalidRequest},
		{"delete namespace with jobs", NamespaceDeleteType, &NamespaceDeleteCommand{Names: []string{"empty", "prod"}}, state.ErrConflict},
		{"delete unknown namespace", NamespaceDeleteType, &NamespaceDeleteCommand{Names: []string{"empty", "ghost"}}, state.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := fixtureFSM(t)
			next := uint64(len(fixture())) + 1
			mustApply(t, f.FSM, next, NamespaceUpsertType, &NamespaceUpsertCommand{Namespaces: []*structs.Namespace{{Name: "empty"}}})
			before := dump(t, f.State())

			res := applyAt(t, f.FSM, next+1, tc.typ, tc.cmd)
			err, _ := res.(error)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Apply = %v, want an error wrapping %v", res, tc.want)
			}
			if errors.Is(err, ErrStopped) || f.Fatal() != nil || f.fatals.Load() != 0 {
				t.Fatalf("a rejected command stopped the FSM: %v", err)
			}
			if d := gocmp.Diff(before, dump(t, f.State())); d != "" {
				t.Fatalf("rejected command left a partial write (-before +after):\n%s", d)
			}
			mustApply(t, f.FSM, next+2, NodeUpdateStatusType, &NodeUpdateStatusCommand{NodeID: nodeID1, Status: structs.NodeStatusDown, UpdatedAt: unixAt(20)})
			if n, _ := f.State().NodeByID(nil, nodeID1); n.Status != structs.NodeStatusDown || n.ModifyIndex != next+2 {
				t.Fatalf("command after a rejected one not applied: %+v", n)
			}
		})
	}
}
