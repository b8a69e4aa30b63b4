package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/structs"
)

// applierHarness runs a plan applier over a real FSM, without Raft: the
// commit function applies the entry to the FSM after an optional delay, so
// that evaluation of the next plan overlaps it as it does on a leader.
type applierHarness struct {
	t       testing.TB
	fsm     *fsm.FSM
	applier *planApplier
	queue   *planQueue

	mu    sync.Mutex
	index uint64
	// commitDelay is the longest simulated Raft latency (random);
	// commitLatency a fixed one.
	commitDelay, commitLatency time.Duration
	// afterCommit runs after each entry (serialised), e.g. invariants.
	afterCommit func()
	commits     int
}

func newApplierHarness(t testing.TB) *applierHarness {
	t.Helper()
	f, err := fsm.New(fsm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := &applierHarness{t: t, fsm: f, queue: newPlanQueue()}
	h.queue.SetEnabled(true)
	h.applier = &planApplier{
		logger:   slog.New(slog.DiscardHandler),
		queue:    h.queue,
		snapshot: f.State().Snapshot,
		apply: func(cmd *fsm.ApplyPlanResultsCommand) (uint64, error) {
			if h.commitDelay > 0 {
				time.Sleep(time.Duration(rand.Int64N(int64(h.commitDelay))))
			}
			if h.commitLatency > 0 {
				time.Sleep(h.commitLatency)
			}
			return h.applyEntry(fsm.ApplyPlanResultsType, cmd)
		},
		now:   time.Now,
		newID: generateUUID,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.applier.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func (h *applierHarness) applyEntry(typ fsm.MessageType, payload any) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	data, err := fsm.Encode(typ, payload)
	if err != nil {
		return 0, err
	}
	h.index++
	res := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
	if err, ok := res.(error); ok {
		return 0, err
	}
	h.commits++
	if h.afterCommit != nil {
		h.afterCommit()
	}
	return h.index, nil
}

func (h *applierHarness) mustApply(typ fsm.MessageType, payload any) uint64 {
	h.t.Helper()
	idx, err := h.applyEntry(typ, payload)
	if err != nil {
		h.t.Fatalf("apply %s: %v", typ, err)
	}
	return idx
}

func (h *applierHarness) submit(plan *structs.Plan) (*structs.PlanResult, error) {
	pp, err := h.queue.Enqueue(plan)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pp.Wait(ctx)
}

// testNode has room for capacity allocs of testAlloc's size.
func testNode(id string, capacity int) *structs.Node {
	return &structs.Node{
		ID: id, Name: id, Datacenter: "dc1", Status: structs.NodeStatusReady,
		SchedulingEligibility: structs.NodeSchedulingEligible,
		NodeResources: &structs.NodeResources{
			Cpu:            structs.NodeCpuResources{CpuShares: int64(100 * capacity)},
			Memory:         structs.NodeMemoryResources{MemoryMB: int64(256 * capacity)},
			Disk:           structs.NodeDiskResources{DiskMB: int64(1000 * capacity)},
			MinDynamicPort: 20000, MaxDynamicPort: 20015,
		},
		ReservedResources: &structs.NodeReservedResources{
			Networks: structs.NodeReservedNetworkResources{ReservedHostPorts: "22"},
		},
	}
}

func testJobForPlan(id string) *structs.Job {
	return &structs.Job{ID: id, Name: id, Namespace: "default", Type: structs.JobTypeService, Priority: 50,
		TaskGroups: []*structs.TaskGroup{{Name: "web", Count: 1, Tasks: []*structs.Task{{Name: "app", Driver: "docker"}}}}}
}

// testAlloc uses 100 MHz, 256 MiB, 1000 MiB of disk and the given host
// ports.
func testAlloc(job *structs.Job, nodeID string, ports ...int) *structs.Allocation {
	ar := &structs.AllocatedResources{
		Tasks: map[string]*structs.AllocatedTaskResources{"app": {
			Cpu:    structs.AllocatedCpuResources{CpuShares: 100},
			Memory: structs.AllocatedMemoryResources{MemoryMB: 256},
		}},
		Shared: structs.AllocatedSharedResources{DiskMB: 1000},
	}
	for i, p := range ports {
		ar.Shared.Ports = append(ar.Shared.Ports, structs.AllocatedPortMapping{Label: fmt.Sprintf("p%d", i), Value: p})
	}
	return &structs.Allocation{
		ID: generateUUID(), Namespace: job.Namespace, JobID: job.ID, TaskGroup: "web", Name: job.ID + ".web[0]",
		NodeID: nodeID, AllocatedResources: ar, DesiredStatus: structs.AllocDesiredStatusRun,
		ClientStatus: structs.AllocClientStatusPending,
	}
}

func (h *applierHarness) registerJob(job *structs.Job) {
	h.t.Helper()
	h.mustApply(fsm.JobRegisterType, &fsm.JobRegisterCommand{Job: job})
}

// checkNodes verifies that no node is over-committed on any dimension and
// that no host port is held twice on a node; it does the arithmetic itself
// rather than trusting AllocsFit.
func checkNodes(h *applierHarness) error {
	st := h.fsm.State()
	nodes, err := st.Nodes(nil, "")
	if err != nil {
		return err
	}
	for _, n := range nodes {
		allocs, err := st.AllocsByNode(nil, n.ID)
		if err != nil {
			return err
		}
		var cpu, mem, disk int64
		ports := map[int]string{22: "node reserved"}
		for _, a := range allocs {
			if a.TerminalStatus() {
				continue
			}
			for _, tr := range a.AllocatedResources.Tasks {
				cpu += tr.Cpu.CpuShares
				mem += tr.Memory.MemoryMB
			}
			disk += a.AllocatedResources.Shared.DiskMB
			for _, p := range a.AllocatedResources.Shared.Ports {
				if other, dup := ports[p.Value]; dup {
					return fmt.Errorf("node %s: port %d held by %s and %s", n.ID, p.Value, other, a.ID)
				}
				ports[p.Value] = a.ID
			}
		}
		nr := n.NodeResources
		if cpu > nr.Cpu.CpuShares || mem > nr.Memory.MemoryMB || disk > nr.Disk.DiskMB {
			return fmt.Errorf("node %s over-committed: cpu %d/%d memory %d/%d disk %d/%d",
				n.ID, cpu, nr.Cpu.CpuShares, mem, nr.Memory.MemoryMB, disk, nr.Disk.DiskMB)
		}
	}
	return nil
}

func TestPlanApplyPartialCommit(t *testing.T) {
	h := newApplierHarness(t)
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: testNode("n1", 2)})
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: testNode("n2", 2)})
	down := testNode("n3", 2)
	down.Status = structs.NodeStatusDown
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: down})
	job := testJobForPlan("web")
	h.registerJob(job)

	plan := &structs.Plan{EvalID: generateUUID(), Priority: 50, Job: job}
	plan.AppendAlloc(testAlloc(job, "n1", 8080))
	plan.AppendAlloc(testAlloc(job, "n1", 8081))
	// n2: two allocs on one port: refused
	plan.AppendAlloc(testAlloc(job, "n2", 9000))
	plan.AppendAlloc(testAlloc(job, "n2", 9000))
	plan.AppendAlloc(testAlloc(job, "n3"))
	plan.AppendAlloc(testAlloc(job, "missing"))
	res, err := h.submit(plan)
	if err != nil {
		t.Fatal(err)
	}
	if full, want, got := res.FullCommit(plan); full || want != 6 || got != 2 {
		t.Fatalf("FullCommit = %v %d %d, want only n1's two placements", full, want, got)
	}
	if len(res.NodeAllocation["n1"]) != 2 || res.RefreshIndex == 0 || res.AllocIndex == 0 {
		t.Fatalf("result %+v", res)
	}
	allocs, _ := h.fsm.State().AllocsByNode(nil, "n1")
	if len(allocs) != 2 || allocs[0].Job == nil {
		t.Fatalf("n1 holds %d allocs (job attached: %v)", len(allocs), len(allocs) > 0 && allocs[0].Job != nil)
	}

	// n1 is full now: a third alloc is refused, but a stop plus a
	// placement in one plan fits.
	over := &structs.Plan{EvalID: generateUUID(), Job: job}
	over.AppendAlloc(testAlloc(job, "n1", 7000))
	if res, err := h.submit(over); err != nil || len(res.NodeAllocation) != 0 || res.RefreshIndex == 0 {
		t.Fatalf("over-commit plan: %+v %v", res, err)
	}
	swap := &structs.Plan{EvalID: generateUUID(), Job: job}
	swap.AppendStoppedAlloc(allocs[0], "replaced", "")
	swap.AppendAlloc(testAlloc(job, "n1", allocs[0].AllocatedResources.Shared.Ports[0].Value))
	if res, err := h.submit(swap); err != nil || len(res.NodeAllocation["n1"]) != 1 || res.RefreshIndex != 0 {
		t.Fatalf("stop+place plan: %+v %v", res, err)
	}
	if err := checkNodes(h); err != nil {
		t.Fatal(err)
	}

	// stops on a down or unknown node are always accepted
	stopOnly := &structs.Plan{EvalID: generateUUID(), Job: job}
	stopOnly.AppendStoppedAlloc(allocs[1], "node down", structs.AllocClientStatusLost)
	if res, err := h.submit(stopOnly); err != nil || len(res.NodeUpdate["n1"]) != 1 {
		t.Fatalf("stop-only plan: %+v %v", res, err)
	}
	got, _ := h.fsm.State().AllocByID(nil, allocs[1].ID)
	if got.DesiredStatus != structs.AllocDesiredStatusStop || got.ClientStatus != structs.AllocClientStatusLost {
		t.Fatalf("stopped alloc: desired %s client %s", got.DesiredStatus, got.ClientStatus)
	}
}

func TestPlanApplyAllAtOnceAndEligibility(t *testing.T) {
	h := newApplierHarness(t)
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: testNode("n1", 1)})
	inel := testNode("n2", 4)
	inel.SchedulingEligibility = structs.NodeSchedulingIneligible
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: inel})
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: testNode("n3", 4)})
	job := testJobForPlan("web")
	h.registerJob(job)

	plan := &structs.Plan{EvalID: generateUUID(), Job: job, AllAtOnce: true}
	plan.AppendAlloc(testAlloc(job, "n3"))
	plan.AppendAlloc(testAlloc(job, "n1"))
	plan.AppendAlloc(testAlloc(job, "n1")) // does not fit
	res, err := h.submit(plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NodeAllocation) != 0 || res.RefreshIndex == 0 {
		t.Fatalf("all-at-once plan partly committed: %+v", res)
	}
	if allocs, _ := h.fsm.State().Allocs(nil, "*", ""); len(allocs) != 0 {
		t.Fatalf("%d allocs committed", len(allocs))
	}

	p2 := &structs.Plan{EvalID: generateUUID(), Job: job}
	p2.AppendAlloc(testAlloc(job, "n2"))
	if res, err := h.submit(p2); err != nil || len(res.NodeAllocation) != 0 {
		t.Fatalf("placement on an ineligible node accepted: %+v %v", res, err)
	}
}

func TestPlanApplyRefusesLostDelivery(t *testing.T) {
	h := newApplierHarness(t)
	b, _ := testBroker(t)
	h.applier.tokenValid = b.TokenValid
	h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: testNode("n1", 4)})
	job := testJobForPlan("web")
	h.registerJob(job)
	e := mkEval("web", 50, structs.JobTypeService)
	b.Enqueue(e)
	_, tok := mustDequeue(t, b)

	plan := &structs.Plan{EvalID: e.ID, EvalToken: "stale", Job: job}
	plan.AppendAlloc(testAlloc(job, "n1"))
	if _, err := h.submit(plan); !errors.Is(err, ErrPlanTokenInvalid) {
		t.Fatalf("plan with a stale token: %v", err)
	}
	plan.EvalToken = tok
	if res, err := h.submit(plan); err != nil || len(res.NodeAllocation["n1"]) != 1 {
		t.Fatalf("plan with the outstanding token: %+v %v", res, err)
	}
}

// TestPlanApplyConcurrentNoOvercommit is the applier's safety property:
// 16 workers submit plans built on slightly stale snapshots against 3
// nodes with room for 10 allocs each and few ports; whatever the
// interleaving, no node is over-committed on any dimension and no host
// port is held twice on a node — checked after every commit and at the
// end.
func TestPlanApplyConcurrentNoOvercommit(t *testing.T) {
	h := newApplierHarness(t)
	h.commitDelay = 300 * time.Microsecond
	nodes := []string{"n1", "n2", "n3"}
	for _, n := range nodes {
		h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: testNode(n, 10)})
	}
	const workers, plansPerWorker = 16, 25
	jobs := make([]*structs.Job, workers)
	for i := range jobs {
		jobs[i] = testJobForPlan(fmt.Sprintf("job-%d", i))
		h.registerJob(jobs[i])
	}
	var violation error
	var vmu sync.Mutex
	h.afterCommit = func() {
		if err := checkNodes(h); err != nil {
			vmu.Lock()
			if violation == nil {
				violation = err
			}
			vmu.Unlock()
		}
	}

	type counts struct{ placed, refused, stopped int }
	results := make([]counts, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			job := jobs[w]
			for i := 0; i < plansPerWorker; i++ {
				// plan on a snapshot, then let it go stale a little
				snap := h.fsm.State().Snapshot()
				time.Sleep(time.Duration(r.IntN(300)) * time.Microsecond)
				plan := &structs.Plan{EvalID: generateUUID(), Priority: 50, Job: job, SnapshotIndex: snap.LatestIndex()}
				mine, _ := snap.AllocsByJob(nil, job.Namespace, job.ID)
				var live []*structs.Allocation
				for _, a := range mine {
					if !a.TerminalStatus() {
						live = append(live, a)
					}
				}
				if len(live) > 0 && r.IntN(3) == 0 {
					a := live[r.IntN(len(live))]
					plan.AppendStoppedAlloc(a, "churn", "")
				}
				for k := 1 + r.IntN(3); k > 0; k-- {
					node := nodes[r.IntN(len(nodes))]
					// ports the snapshot says are free: a static one from
					// a small pool, and a dynamic one
					used := map[int]bool{22: true}
					onNode, _ := snap.AllocsByNode(nil, node)
					for _, a := range onNode {
						if !a.TerminalStatus() {
							for _, p := range a.AllocatedResources.Shared.Ports {
								used[p.Value] = true
							}
						}
					}
					for _, a := range plan.NodeAllocation[node] {
						for _, p := range a.AllocatedResources.Shared.Ports {
							used[p.Value] = true
						}
					}
					pick := func(lo, n int) int {
						for try := 0; try < 50; try++ {
							if p := lo + r.IntN(n); !used[p] {
								used[p] = true
								return p
							}
						}
						return lo
					}
					plan.AppendAlloc(testAlloc(job, node, pick(8000, 12), pick(20000, 16)))
				}
				res, err := h.submit(plan)
				if err != nil {
					t.Errorf("worker %d: submit: %v", w, err)
					return
				}
				_, want, got := res.FullCommit(plan)
				results[w].placed += got
				results[w].refused += want - got
				for _, l := range res.NodeUpdate {
					results[w].stopped += len(l)
				}
			}
		}()
	}
	wg.Wait()
	if violation != nil {
		t.Fatalf("invariant broken after a commit: %v", violation)
	}
	if err := checkNodes(h); err != nil {
		t.Fatal(err)
	}
	var total counts
	for _, c := range results {
		total.placed += c.placed
		total.refused += c.refused
		total.stopped += c.stopped
	}
	t.Logf("placed %d, refused %d, stopped %d in %d commits", total.placed, total.refused, total.stopped, h.commits)
	if total.placed == 0 || total.refused == 0 {
		t.Fatalf("the test did not exercise contention: placed %d refused %d", total.placed, total.refused)
	}
}

// BenchmarkPlanApply measures the applier alone (FSM apply included, Raft
// replaced by a fixed latency): one big plan onto many nodes, and many
// small plans from concurrent workers, with overlapped or serial commits
// and serial or parallel node evaluation.
func BenchmarkPlanApply(b *testing.B) {
	for _, bc := range []struct {
		name                  string
		nodes, plans, perPlan int
		submitters            int
	}{
		{"one-plan-10000-on-5000-nodes", 5000, 1, 10000, 1},
		{"1000-plans-of-10-on-5000-nodes", 5000, 1000, 10, 8},
	} {
		for _, mode := range []struct {
			name     string
			serial   bool
			parallel int
		}{{"overlap", false, 1}, {"serial", true, 1}, {"overlap-parallel2", false, 2}} {
			b.Run(bc.name+"/"+mode.name, func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					h := newApplierHarness(b)
					h.commitLatency = 2 * time.Millisecond
					h.applier.serial, h.applier.parallelism = mode.serial, mode.parallel
					nodes := make([]*structs.Node, bc.nodes)
					for i := range nodes {
						nodes[i] = testNode(fmt.Sprintf("node-%05d", i), 4)
					}
					for i := 0; i < len(nodes); i += 500 {
						for _, n := range nodes[i:min(i+500, len(nodes))] {
							h.mustApply(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: n})
						}
					}
					plans := make([]*structs.Plan, bc.plans)
					k := 0
					for i := range plans {
						// one job per plan, as for 1000 jobs of count 10
						job := testJobForPlan(fmt.Sprintf("bench-%d", i))
						h.registerJob(job)
						p := &structs.Plan{EvalID: generateUUID(), Job: job}
						for j := 0; j < bc.perPlan; j++ {
							p.AppendAlloc(testAlloc(job, nodes[k%len(nodes)].ID))
							k++
						}
						plans[i] = p
					}
					b.StartTimer()
					var wg sync.WaitGroup
					next := make(chan *structs.Plan)
					for w := 0; w < bc.submitters; w++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for p := range next {
								res, err := h.submit(p)
								if err != nil {
									b.Error(err)
									return
								}
								if full, _, _ := res.FullCommit(p); !full {
									b.Error("plan not fully committed")
								}
							}
						}()
					}
					for _, p := range plans {
						next <- p
					}
					close(next)
					wg.Wait()
				}
				b.ReportMetric(float64(bc.plans*bc.perPlan)*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
			})
		}
	}
}
