package fsm

import (
	"testing"

	"github.com/berth-dev/berth/structs"
)

// TestDeterminism applies one history to two FSMs, checking after every
// entry that both hold identical state and that the job bookkeeping
// (Version, CreateIndex, ModifyIndex, JobModifyIndex, Status) is what the
// history implies.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	const ns = structs.DefaultNamespace
	spec := func(count int, submit int) *structs.Job {
		j := testJob(ns, "batchy", structs.JobTypeBatch, count)
		j.SubmitTime = unixAt(submit)
		return j
	}
	alloc := func(id, client, desired string, step int) *structs.Allocation {
		a := testAlloc(id, ns, "batchy", evalID1, nodeID1, "batchy-group", client, step)
		a.DesiredStatus = desired
		return a
	}
	svcAlloc := func(client, desired string, step int) *structs.Allocation {
		a := testAlloc(allocID4, ns, "svc", evalID2, nodeID1, "svc-group", client, step)
		a.DesiredStatus = desired
		return a
	}
	type want struct {
		job                       string
		version                   uint64
		create, modify, jobModify uint64
		status                    string
		stop                      bool
	}
	run, stop := structs.AllocDesiredStatusRun, structs.AllocDesiredStatusStop
	steps := []struct {
		name string
		e    entry
		want want
	}{
		{"register", entry{JobRegisterType, &JobRegisterCommand{Job: spec(2, 1)}},
			want{"batchy", 0, 1, 1, 1, structs.JobStatusPending, false}},
		{"re-register same spec, new submit time: no-op", entry{JobRegisterType, &JobRegisterCommand{Job: spec(2, 2)}},
			want{"batchy", 0, 1, 1, 1, structs.JobStatusPending, false}},
		{"register changed spec", entry{JobRegisterType, &JobRegisterCommand{Job: spec(3, 3)}},
			want{"batchy", 1, 1, 3, 3, structs.JobStatusPending, false}},
		{"node", entry{NodeRegisterType, &NodeRegisterCommand{Node: testNode(nodeID1, "client-1")}},
			want{"batchy", 1, 1, 3, 3, structs.JobStatusPending, false}},
		{"allocs placed", entry{AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			alloc(allocID1, structs.AllocClientStatusPending, run, 5),
			alloc(allocID2, structs.AllocClientStatusPending, run, 5),
		}}}, want{"batchy", 1, 1, 5, 3, structs.JobStatusRunning, false}},
		{"allocs running: status unchanged, job untouched", entry{AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			alloc(allocID1, structs.AllocClientStatusRunning, run, 6),
		}}}, want{"batchy", 1, 1, 5, 3, structs.JobStatusRunning, false}},
		{"one alloc completes", entry{AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			alloc(allocID1, structs.AllocClientStatusComplete, run, 7),
		}}}, want{"batchy", 1, 1, 5, 3, structs.JobStatusRunning, false}},
		{"last alloc completes", entry{AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			alloc(allocID2, structs.AllocClientStatusComplete, run, 8),
		}}}, want{"batchy", 1, 1, 8, 3, structs.JobStatusDead, false}},
		{"re-register same spec: no-op, still dead (batch with allocs)", entry{JobRegisterType, &JobRegisterCommand{Job: spec(3, 9)}},
			want{"batchy", 1, 1, 8, 3, structs.JobStatusDead, false}},

		{"service register", entry{JobRegisterType, &JobRegisterCommand{Job: testJob(ns, "svc", structs.JobTypeService, 1)}},
			want{"svc", 0, 10, 10, 10, structs.JobStatusPending, false}},
		{"service alloc running", entry{AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			svcAlloc(structs.AllocClientStatusRunning, run, 11)}}},
			want{"svc", 0, 10, 11, 10, structs.JobStatusRunning, false}},
		{"service stop: new version, still running", entry{JobDeregisterType, &JobDeregisterCommand{Namespace: ns, JobID: "svc", SubmitTime: unixAt(12)}},
			want{"svc", 1, 10, 12, 12, structs.JobStatusRunning, true}},
		{"service alloc stopped: dead", entry{AllocUpsertType, &AllocUpsertCommand{Allocs: []*structs.Allocation{
			svcAlloc(structs.AllocClientStatusComplete, stop, 13)}}},
			want{"svc", 1, 10, 13, 12, structs.JobStatusDead, true}},
		// without an evaluation in the entry nothing is pending, and every
		// allocation it had is terminal: dead, as Nomad reports it
		{"service re-register without an eval: version up, still dead", entry{JobRegisterType, &JobRegisterCommand{Job: testJob(ns, "svc", structs.JobTypeService, 1)}},
			want{"svc", 2, 10, 14, 14, structs.JobStatusDead, false}},
	}

	a, b := newTestFSM(t), newTestFSM(t)
	for i, st := range steps {
		index := uint64(i + 1)
		data := encode(t, st.e.typ, st.e.payload)
		ra, rb := a.Apply(logAt(index, data)), b.Apply(logAt(index, data))
		if err, ok := ra.(error); ok {
			t.Fatalf("step %d %q: %v", index, st.name, err)
		}
		if _, ok := rb.(error); ok {
			t.Fatalf("step %d %q: B failed where A did not: %v", index, st.name, rb)
		}
		if d := diffStates(t, a.State(), b.State()); d != "" {
			t.Fatalf("step %d %q: FSMs diverged (-A +B):\n%s", index, st.name, d)
		}
		if r, ok := ra.(*JobRegisterResult); ok && r.JobModifyIndex != st.want.jobModify {
			t.Errorf("step %d %q: result JobModifyIndex = %d, want %d", index, st.name, r.JobModifyIndex, st.want.jobModify)
		}
		j, err := a.State().JobByID(nil, ns, st.want.job)
		if err != nil || j == nil {
			t.Fatalf("step %d %q: job %s: %v %v", index, st.name, st.want.job, j, err)
		}
		got := want{st.want.job, j.Version, j.CreateIndex, j.ModifyIndex, j.JobModifyIndex, j.Status, j.Stop}
		if got != st.want {
			t.Errorf("step %d %q:\n got %+v\nwant %+v", index, st.name, got, st.want)
		}
	}
}
