package fsm

import (
	"errors"
	"fmt"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// IDs of the scheduling scenario, next to those of helpers_test.go.
const (
	allocID5 = "a0000000-0000-4000-8000-000000000005"
	allocID6 = "a0000000-0000-4000-8000-000000000006"
	evalID6  = "e0000000-0000-4000-8000-000000000006"
	evalID7  = "e0000000-0000-4000-8000-000000000007"
	evalID8  = "e0000000-0000-4000-8000-000000000008"
	evalID9  = "e0000000-0000-4000-8000-000000000009"
)

// schedulingFixture continues fixture() (applied from index 18) with every
// scheduling command: it is meant to be appended to fixture() so that the
// snapshot round trip covers types 11-14.
func schedulingFixture() []entry {
	webV1 := testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 3)
	webV1.SubmitTime = unixAt(7)

	placed := testAlloc(allocID5, structs.DefaultNamespace, "web", evalID3, nodeID1, "web-group", structs.AllocClientStatusPending, 19)
	placed.Name = "web.web-group[2]"
	placed.TaskStates = nil
	placed.AllocatedResources = &structs.AllocatedResources{
		Tasks: map[string]*structs.AllocatedTaskResources{"web-task": {
			Cpu:    structs.AllocatedCpuResources{CpuShares: 500},
			Memory: structs.AllocatedMemoryResources{MemoryMB: 256},
		}},
		Shared: structs.AllocatedSharedResources{DiskMB: 300, Ports: []structs.AllocatedPortMapping{{Label: "http", Value: 23456, To: 80}}},
	}
	placed.PreemptedAllocations = []string{allocID1}

	failed := &structs.Allocation{ID: allocID4, ClientStatus: structs.AllocClientStatusFailed, ClientDescription: "task failed",
		TaskStates: map[string]*structs.TaskState{"web-task": {State: "dead", Failed: true, StartedAt: t0, FinishedAt: t0.Add(20 * time.Second)}},
		ModifyTime: unixAt(20)}
	running := &structs.Allocation{ID: allocID5, ClientStatus: structs.AllocClientStatusRunning,
		TaskStates: map[string]*structs.TaskState{"web-task": {State: "running", StartedAt: t0.Add(20 * time.Second)}},
		ModifyTime: unixAt(20)}

	downEval := testEval(evalID9, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerNodeUpdate, structs.EvalStatusPending, 22)
	downEval.NodeID = nodeID1
	return []entry{
		/* 18 */ {SchedulerConfigType, &SchedulerConfigCommand{CAS: true, Index: 0, Config: &structs.SchedulerConfiguration{
			SchedulerAlgorithm: structs.SchedulerAlgorithmSpread,
			PreemptionConfig:   structs.PreemptionConfig{SystemSchedulerEnabled: true, ServiceSchedulerEnabled: true},
		}}},
		/* 19 */ {ApplyPlanResultsType, &ApplyPlanResultsCommand{
			Job:             webV1,
			AllocsUpdated:   []*structs.Allocation{placed},
			AllocsStopped:   []*structs.Allocation{{ID: allocID2, DesiredStatus: structs.AllocDesiredStatusStop, DesiredDescription: "alloc is being updated", FollowupEvalID: evalID6}},
			AllocsPreempted: []*structs.Allocation{{ID: allocID1, DesiredStatus: structs.AllocDesiredStatusEvict, DesiredDescription: "Preempted by alloc ID " + allocID5, PreemptedByAllocation: allocID5}},
			EvalID:          evalID3,
			Evals:           []*structs.Evaluation{testEval(evalID6, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerPreemption, structs.EvalStatusPending, 19)},
			UpdatedAt:       unixAt(19),
		}},
		/* 20 */ {AllocClientUpdateType, &AllocClientUpdateCommand{
			Allocs:    []*structs.Allocation{failed, running, {ID: "a-garbage-collected", ClientStatus: structs.AllocClientStatusComplete}},
			Evals:     []*structs.Evaluation{testEval(evalID7, structs.DefaultNamespace, "web", structs.JobTypeService, structs.EvalTriggerRetryFailedAlloc, structs.EvalStatusPending, 20)},
			UpdatedAt: unixAt(20),
		}},
		/* 21 */ {NodeUpdateEligibilityType, &NodeUpdateEligibilityCommand{NodeID: nodeID1, Eligibility: structs.NodeSchedulingIneligible, UpdatedAt: unixAt(21)}},
		/* 22 */ {NodeUpdateStatusType, &NodeUpdateStatusCommand{NodeID: nodeID1, Status: structs.NodeStatusDown, UpdatedAt: unixAt(22),
			Evals: []*structs.Evaluation{downEval}}},
	}
}

// fullFixture is fixture() with schedulingFixture(), whether or not
// fixture() already includes it.
func fullFixture() []entry {
	fx := fixture()
	for _, e := range fx {
		if e.typ == ApplyPlanResultsType {
			return fx
		}
	}
	return append(fx, schedulingFixture()...)
}

// TestSchedulingCommandsSnapshotRoundTrip is TestSnapshotRoundTripEveryCommand
// for the scheduling commands, over fixture() + schedulingFixture().
func TestSchedulingCommandsSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	fx := fullFixture()
	for _, typ := range []MessageType{ApplyPlanResultsType, AllocClientUpdateType, SchedulerConfigType, NodeUpdateEligibilityType, NodeUpdateStatusType} {
		t.Run(typ.String(), func(t *testing.T) {
			t.Parallel()
			last := -1
			for i, e := range fx {
				if e.typ == typ {
					last = i
				}
			}
			a := newTestFSM(t)
			applyAll(t, a.FSM, 1, fx[:last+1])
			b := newTestFSM(t)
			restoreInto(t, b.FSM, persist(t, a.FSM))
			if d := diffStates(t, a.State(), b.State()); d != "" {
				t.Fatalf("restored state differs after %s (-A +B):\n%s", typ, d)
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

func TestSchedulingFixtureOutcome(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	applyAll(t, f.FSM, 1, fullFixture())
	s := f.State()

	cfg, err := s.SchedulerConfig(nil)
	if err != nil || cfg.SchedulerAlgorithm != structs.SchedulerAlgorithmSpread || !cfg.PreemptionConfig.ServiceSchedulerEnabled ||
		cfg.CreateIndex != 18 || cfg.ModifyIndex != 18 {
		t.Errorf("scheduler config = %+v, %v", cfg, err)
	}

	a5, _ := s.AllocByID(nil, allocID5)
	if a5 == nil || a5.Job == nil || a5.Job.ID != "web" || a5.CreateIndex != 19 || a5.AllocModifyIndex != 19 ||
		a5.ModifyIndex != 20 || a5.ClientStatus != structs.AllocClientStatusRunning || a5.CreateTime != unixAt(19) ||
		a5.ModifyTime != unixAt(20) || a5.TaskStates["web-task"] == nil || a5.AllocatedResources.Shared.Ports[0].Value != 23456 {
		t.Errorf("placed alloc = %+v", a5)
	}
	a2, _ := s.AllocByID(nil, allocID2)
	if a2.DesiredStatus != structs.AllocDesiredStatusStop || a2.FollowupEvalID != evalID6 || a2.ClientStatus != structs.AllocClientStatusPending ||
		a2.CreateIndex != 5 || a2.ModifyIndex != 19 || a2.AllocModifyIndex != 19 || a2.ModifyTime != unixAt(19) || a2.Job != nil || a2.NodeID != nodeID1 {
		t.Errorf("stopped alloc = %+v", a2)
	}
	a1, _ := s.AllocByID(nil, allocID1)
	if a1.DesiredStatus != structs.AllocDesiredStatusEvict || a1.PreemptedByAllocation != allocID5 || a1.ClientStatus != structs.AllocClientStatusRunning ||
		a1.TaskStates["web-task"] == nil {
		t.Errorf("preempted alloc = %+v", a1)
	}
	a4, _ := s.AllocByID(nil, allocID4)
	if a4.ClientStatus != structs.AllocClientStatusFailed || a4.ClientDescription != "task failed" || a4.ModifyIndex != 20 ||
		a4.AllocModifyIndex != 8 || a4.DesiredStatus != structs.AllocDesiredStatusRun || !a4.TaskStates["web-task"].Failed {
		t.Errorf("failed alloc = %+v", a4)
	}
	if a, _ := s.AllocByID(nil, "a-garbage-collected"); a != nil {
		t.Errorf("client update created an alloc: %+v", a)
	}
	for id, trigger := range map[string]string{evalID6: structs.EvalTriggerPreemption, evalID7: structs.EvalTriggerRetryFailedAlloc, evalID9: structs.EvalTriggerNodeUpdate} {
		if e, _ := s.EvalByID(nil, id); e == nil || e.TriggeredBy != trigger {
			t.Errorf("eval %s = %+v, want trigger %s", id, e, trigger)
		}
	}
	n, _ := s.NodeByID(nil, nodeID1)
	if n.Status != structs.NodeStatusDown || n.SchedulingEligibility != structs.NodeSchedulingIneligible || n.ModifyIndex != 22 || n.StatusUpdatedAt != unixAt(22) {
		t.Errorf("node = %+v", n)
	}
}

// TestPlanResultsKeepClientState: an in-place update from the scheduler
// does not roll back what the agent reported, except lost/unknown.
func TestPlanResultsKeepClientState(t *testing.T) {
	t.Parallel()
	f := fixtureFSM(t)
	next := uint64(len(fixture())) + 1
	newJob := testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 3)
	newJob.Meta["owner"] = "someone-else"

	stale := testAlloc(allocID1, structs.DefaultNamespace, "web", evalID3, nodeID1, "web-group", structs.AllocClientStatusPending, 1)
	stale.TaskStates = nil
	lost := testAlloc(allocID2, structs.DefaultNamespace, "web", evalID3, nodeID1, "web-group", structs.AllocClientStatusLost, 1)
	lost.ClientDescription = "node down"
	mustApply(t, f.FSM, next, ApplyPlanResultsType, &ApplyPlanResultsCommand{Job: newJob, AllocsUpdated: []*structs.Allocation{stale, lost}, UpdatedAt: unixAt(30)})

	s := f.State()
	a1, _ := s.AllocByID(nil, allocID1)
	if a1.ClientStatus != structs.AllocClientStatusRunning || a1.TaskStates["web-task"] == nil || a1.CreateIndex != 5 ||
		a1.AllocModifyIndex != next || a1.Job.Meta["owner"] != "someone-else" || a1.CreateTime != unixAt(1) || a1.ModifyTime != unixAt(30) {
		t.Errorf("in-place updated alloc = %+v (job meta %v)", a1, a1.Job.Meta)
	}
	a2, _ := s.AllocByID(nil, allocID2)
	if a2.ClientStatus != structs.AllocClientStatusLost || a2.ClientDescription != "node down" {
		t.Errorf("lost alloc = %+v", a2)
	}
}

// TestPlanResultsJobStatus: the job statuses follow the allocations the
// plan changed, the preempted job's too.
func TestPlanResultsJobStatus(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	const ns = structs.DefaultNamespace
	low := testJob(ns, "low", structs.JobTypeBatch, 1)
	high := testJob(ns, "high", structs.JobTypeService, 1)
	lowAlloc := testAlloc(allocID1, ns, "low", evalID1, nodeID1, "low-group", structs.AllocClientStatusRunning, 1)
	highAlloc := testAlloc(allocID2, ns, "high", evalID2, nodeID1, "high-group", structs.AllocClientStatusPending, 2)
	applyAll(t, f.FSM, 1, []entry{
		{NodeRegisterType, &NodeRegisterCommand{Node: testNode(nodeID1, "client-1")}},
		{JobRegisterType, &JobRegisterCommand{Job: low}},
		{JobRegisterType, &JobRegisterCommand{Job: high}},
		{ApplyPlanResultsType, &ApplyPlanResultsCommand{Job: low, AllocsUpdated: []*structs.Allocation{lowAlloc}, UpdatedAt: unixAt(4)}},
	})
	status := func(id string) string {
		j, _ := f.State().JobByID(nil, ns, id)
		return j.Status
	}
	if got := status("low"); got != structs.JobStatusRunning {
		t.Fatalf("low = %s, want running", got)
	}
	mustApply(t, f.FSM, 5, ApplyPlanResultsType, &ApplyPlanResultsCommand{Job: high,
		AllocsUpdated:   []*structs.Allocation{highAlloc},
		AllocsPreempted: []*structs.Allocation{{ID: allocID1, DesiredStatus: structs.AllocDesiredStatusEvict, PreemptedByAllocation: allocID2, ClientStatus: structs.AllocClientStatusComplete}},
		UpdatedAt:       unixAt(5)})
	if got := status("low"); got != structs.JobStatusDead {
		t.Errorf("preempted batch job = %s, want dead", got)
	}
	if got := status("high"); got != structs.JobStatusRunning {
		t.Errorf("placed job = %s, want running", got)
	}
	mustApply(t, f.FSM, 6, AllocClientUpdateType, &AllocClientUpdateCommand{Allocs: []*structs.Allocation{{ID: allocID2, ClientStatus: structs.AllocClientStatusFailed}}, UpdatedAt: unixAt(6)})
	// as Nomad: nothing live and no evaluation pending means dead
	if got := status("high"); got != structs.JobStatusDead {
		t.Errorf("service job with only a failed alloc = %s, want dead", got)
	}
	if a, _ := f.State().AllocByID(nil, allocID2); a.ModifyTime != unixAt(6) {
		t.Errorf("client update without ModifyTime: ModifyTime = %d, want the command's", a.ModifyTime)
	}
}

// TestSchedulingCommandsRejected: what the state refuses leaves no trace.
func TestSchedulingCommandsRejected(t *testing.T) {
	t.Parallel()
	withJob := func(a *structs.Allocation) *structs.Allocation {
		a.Job = testJob(structs.DefaultNamespace, "web", structs.JobTypeService, 3)
		return a
	}
	cases := []struct {
		name string
		typ  MessageType
		cmd  any
		want error
	}{
		{"plan: second placement without ID", ApplyPlanResultsType, &ApplyPlanResultsCommand{AllocsUpdated: []*structs.Allocation{
			withJob(testAlloc(allocID5, structs.DefaultNamespace, "web", evalID3, nodeID1, "web-group", "", 1)), {NodeID: nodeID1},
		}}, state.ErrInvalidRequest},
		{"plan: new placement without job", ApplyPlanResultsType, &ApplyPlanResultsCommand{AllocsUpdated: []*structs.Allocation{
			testAlloc(allocID6, structs.DefaultNamespace, "web", evalID3, nodeID1, "web-group", "", 1),
		}}, state.ErrInvalidRequest},
		{"plan: placement without node", ApplyPlanResultsType, &ApplyPlanResultsCommand{AllocsUpdated: []*structs.Allocation{
			withJob(testAlloc(allocID6, structs.DefaultNamespace, "web", evalID3, "", "web-group", "", 1)),
		}}, state.ErrInvalidRequest},
		{"plan: stop without ID, after a good stop", ApplyPlanResultsType, &ApplyPlanResultsCommand{
			AllocsStopped: []*structs.Allocation{{ID: allocID1}, {}}}, state.ErrInvalidRequest},
		{"plan: invalid eval", ApplyPlanResultsType, &ApplyPlanResultsCommand{
			AllocsStopped: []*structs.Allocation{{ID: allocID1}}, Evals: []*structs.Evaluation{{JobID: "web"}}}, state.ErrInvalidRequest},
		{"client update: second without ID", AllocClientUpdateType, &AllocClientUpdateCommand{
			Allocs: []*structs.Allocation{{ID: allocID1, ClientStatus: structs.AllocClientStatusFailed}, {}}}, state.ErrInvalidRequest},
		{"client update: invalid eval", AllocClientUpdateType, &AllocClientUpdateCommand{
			Allocs: []*structs.Allocation{{ID: allocID1, ClientStatus: structs.AllocClientStatusFailed}}, Evals: []*structs.Evaluation{{}}}, state.ErrInvalidRequest},
		{"scheduler config: missing", SchedulerConfigType, &SchedulerConfigCommand{}, state.ErrInvalidRequest},
		{"scheduler config: bad algorithm", SchedulerConfigType, &SchedulerConfigCommand{Config: &structs.SchedulerConfiguration{SchedulerAlgorithm: "random"}}, state.ErrInvalidRequest},
		{"scheduler config: CAS on unset config", SchedulerConfigType, &SchedulerConfigCommand{Config: structs.DefaultSchedulerConfiguration(), CAS: true, Index: 3}, state.ErrConflict},
		{"eligibility: unknown node", NodeUpdateEligibilityType, &NodeUpdateEligibilityCommand{NodeID: "ghost", Eligibility: structs.NodeSchedulingIneligible}, state.ErrNotFound},
		{"eligibility: bad value", NodeUpdateEligibilityType, &NodeUpdateEligibilityCommand{NodeID: nodeID1, Eligibility: "maybe"}, state.ErrInvalidRequest},
		{"node status: invalid eval", NodeUpdateStatusType, &NodeUpdateStatusCommand{NodeID: nodeID1, Status: structs.NodeStatusDown, Evals: []*structs.Evaluation{{}}}, state.ErrInvalidRequest},
		{"node register: invalid eval", NodeRegisterType, &NodeRegisterCommand{Node: testNode(nodeID2, "client-2"), Evals: []*structs.Evaluation{{}}}, state.ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := fixtureFSM(t)
			next := uint64(len(fixture())) + 1
			before := dump(t, f.State())
			res := applyAt(t, f.FSM, next, tc.typ, tc.cmd)
			if err, _ := res.(error); !errors.Is(err, tc.want) || errors.Is(err, ErrStopped) {
				t.Fatalf("Apply = %v, want an error wrapping %v", res, tc.want)
			}
			if d := gocmp.Diff(before, dump(t, f.State())); d != "" {
				t.Fatalf("rejected command left a partial write (-before +after):\n%s", d)
			}
		})
	}
}

func TestSchedulerConfigCAS(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	if cfg, _ := f.State().SchedulerConfig(nil); cfg.SchedulerAlgorithm != structs.SchedulerAlgorithmBinpack || !cfg.PreemptionConfig.SystemSchedulerEnabled || cfg.ModifyIndex != 0 {
		t.Fatalf("default config = %+v", cfg)
	}
	mustApply(t, f.FSM, 1, SchedulerConfigType, &SchedulerConfigCommand{Config: &structs.SchedulerConfiguration{}})
	mustApply(t, f.FSM, 2, SchedulerConfigType, &SchedulerConfigCommand{CAS: true, Index: 1, Config: &structs.SchedulerConfiguration{SchedulerAlgorithm: structs.SchedulerAlgorithmSpread}})
	res := applyAt(t, f.FSM, 3, SchedulerConfigType, &SchedulerConfigCommand{CAS: true, Index: 1, Config: &structs.SchedulerConfiguration{}})
	if err, _ := res.(error); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("stale CAS = %v, want conflict", res)
	}
	cfg, _ := f.State().SchedulerConfig(nil)
	if cfg.SchedulerAlgorithm != structs.SchedulerAlgorithmSpread || cfg.CreateIndex != 1 || cfg.ModifyIndex != 2 || cfg.PreemptionConfig.SystemSchedulerEnabled {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestNodeEligibilityWhileDraining(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	n := testNode(nodeID1, "client-1")
	mustApply(t, f.FSM, 1, NodeRegisterType, &NodeRegisterCommand{Node: n})
	mustApply(t, f.FSM, 2, NodeUpdateEligibilityType, &NodeUpdateEligibilityCommand{NodeID: nodeID1, Eligibility: structs.NodeSchedulingIneligible})
	// a re-registration keeps the operator's choice
	mustApply(t, f.FSM, 3, NodeRegisterType, &NodeRegisterCommand{Node: n})
	if got, _ := f.State().NodeByID(nil, nodeID1); got.SchedulingEligibility != structs.NodeSchedulingIneligible {
		t.Fatalf("eligibility after re-register = %s", got.SchedulingEligibility)
	}
	// drain is set directly here: its command belongs to the drain work
	txn := f.State().Txn(true)
	raw, _ := txn.First(state.TableNodes, "id", nodeID1)
	c := *raw.(*structs.Node)
	c.Drain = true
	if err := txn.Insert(state.TableNodes, &c); err != nil {
		t.Fatal(err)
	}
	txn.Commit()
	res := applyAt(t, f.FSM, 4, NodeUpdateEligibilityType, &NodeUpdateEligibilityCommand{NodeID: nodeID1, Eligibility: structs.NodeSchedulingEligible})
	if err, _ := res.(error); !errors.Is(err, state.ErrInvalidRequest) {
		t.Fatalf("eligible while draining = %v, want invalid request", res)
	}
}

// bigPlan places n allocations of one job over 1,000 nodes in one entry.
func bigPlan(n int) (*structs.Job, []byte) {
	job := testJob(structs.DefaultNamespace, "big", structs.JobTypeService, n)
	cmd := &ApplyPlanResultsCommand{Job: job, EvalID: evalID1, UpdatedAt: unixAt(3)}
	for i := range n {
		a := testAlloc(fmt.Sprintf("b0000000-0000-4000-8000-%012d", i), structs.DefaultNamespace, "big", evalID1,
			fmt.Sprintf("5b0c1a8e-3f7a-4d5c-9a0e-%012d", i%1000), "big-group", structs.AllocClientStatusPending, 3)
		a.Name = fmt.Sprintf("big.big-group[%d]", i)
		a.TaskStates = nil
		a.AllocatedResources = &structs.AllocatedResources{
			Tasks:  map[string]*structs.AllocatedTaskResources{"big-task": {Cpu: structs.AllocatedCpuResources{CpuShares: 100}, Memory: structs.AllocatedMemoryResources{MemoryMB: 64}}},
			Shared: structs.AllocatedSharedResources{DiskMB: 10},
		}
		cmd.AllocsUpdated = append(cmd.AllocsUpdated, a)
	}
	data, err := Encode(ApplyPlanResultsType, cmd)
	if err != nil {
		panic(err)
	}
	return job, data
}

func TestApplyPlanResults10k(t *testing.T) {
	t.Parallel()
	job, data := bigPlan(10_000)
	f := newTestFSM(t)
	mustApply(t, f.FSM, 1, JobRegisterType, &JobRegisterCommand{Job: job})
	if res := f.Apply(logAt(2, data)); res != nil {
		t.Fatalf("apply = %v", res)
	}
	allocs, _ := f.State().AllocsByJob(nil, structs.DefaultNamespace, "big")
	if len(allocs) != 10_000 {
		t.Fatalf("%d allocs, want 10000", len(allocs))
	}
	// one Job object shared by every allocation of the entry
	for _, a := range allocs {
		if a.Job != allocs[0].Job || a.CreateIndex != 2 {
			t.Fatalf("alloc %s: job %p (first %p), create index %d", a.ID, a.Job, allocs[0].Job, a.CreateIndex)
		}
	}
	if j, _ := f.State().JobByID(nil, structs.DefaultNamespace, "big"); j.Status != structs.JobStatusRunning {
		t.Fatalf("job status = %s", j.Status)
	}
}

func BenchmarkApplyPlanResults10k(b *testing.B) {
	job, data := bigPlan(10_000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		f := newTestFSM(b)
		mustApply(b, f.FSM, 1, JobRegisterType, &JobRegisterCommand{Job: job})
		b.StartTimer()
		if res := f.Apply(logAt(2, data)); res != nil {
			b.Fatal(res)
		}
	}
}
