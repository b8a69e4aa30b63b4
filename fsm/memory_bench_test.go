package fsm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/internal/simnodes"
	"github.com/berth-dev/berth/structs"
)

// BenchmarkStateMemory measures the live heap of the state with 10,000
// nodes and 100,000 running allocations applied through the FSM, the shape
// of the "server RSS at 10,000 nodes" figure without Raft and HTTP.
//
//	go test -run '^$' -bench StateMemory -benchtime 1x ./fsm/
func BenchmarkStateMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		nodesMB, allocsMB, restoredMB := stateMemory(b)
		b.ReportMetric(float64(nodesMB), "nodes_MB")
		b.ReportMetric(float64(allocsMB), "allocs_MB")
		b.ReportMetric(float64(restoredMB), "restored_MB")
	}
}

// stateMemory returns the live heap of the nodes, of the allocations, and
// of the whole state restored from a snapshot of it (what a restarted
// server or a follower installing a snapshot holds).
func stateMemory(t testing.TB) (nodesMB, allocsMB, restoredMB uint64) {
	f, _ := New(Config{})
	idx := uint64(1)
	apply := func(mt MessageType, cmd any) {
		b, err := Encode(mt, cmd)
		if err != nil {
			t.Fatal(err)
		}
		idx++
		if r := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}); r != nil {
			if err, ok := r.(error); ok {
				t.Fatal(err)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var nodes []*structs.Node
	for i := 0; i < 10000; i++ {
		n := simnodes.BuildNode(i, r, []string{"dc1", "dc2", "dc3"}, []string{"a", "b"}, 10, time.Now())
		n.Status = structs.NodeStatusReady
		nodes = append(nodes, n)
		apply(NodeRegisterType, &NodeRegisterCommand{Node: n})
	}
	var m0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for j := 0; j < 10; j++ {
		job := &structs.Job{ID: fmt.Sprintf("job-%d", j), Name: "x", Namespace: "default", Type: "service", Priority: 50,
			TaskGroups: []*structs.TaskGroup{{Name: "g", Count: 10000, Tasks: []*structs.Task{{Name: "t", Driver: "docker", Config: map[string]any{"image": "redis:7"}, Resources: &structs.Resources{CPU: 20, MemoryMB: 32}}}}}}
		job.Canonicalize()
		apply(JobRegisterType, &JobRegisterCommand{Job: job})
		cmd := &ApplyPlanResultsCommand{Job: job, EvalID: "eval-" + job.ID, UpdatedAt: time.Now().UnixNano()}
		for i := 0; i < 10000; i++ {
			n := nodes[(i*7+j)%len(nodes)]
			cmd.AllocsUpdated = append(cmd.AllocsUpdated, &structs.Allocation{
				ID: fmt.Sprintf("%08d-%04d-4000-8000-000000000000", i, j), Namespace: "default", EvalID: "eval-" + job.ID,
				Name: fmt.Sprintf("%s.g[%d]", job.ID, i), NodeID: n.ID, NodeName: n.Name, JobID: job.ID, TaskGroup: "g",
				AllocatedResources: &structs.AllocatedResources{Tasks: map[string]*structs.AllocatedTaskResources{"t": {Cpu: structs.AllocatedCpuResources{CpuShares: 20}, Memory: structs.AllocatedMemoryResources{MemoryMB: 32}}}, Shared: structs.AllocatedSharedResources{DiskMB: 300}},
				Metrics:            &structs.AllocMetric{NodesEvaluated: 2, ScoreMetaData: []*structs.NodeScoreMeta{{NodeID: n.ID, Scores: map[string]float64{"binpack": 0.5, "job-anti-affinity": 0}, NormScore: 0.5}, {NodeID: nodes[0].ID, Scores: map[string]float64{"binpack": 0.4}, NormScore: 0.4}}},
				DesiredStatus:      "run", ClientStatus: "pending", CreateTime: 1, ModifyTime: 1,
			})
		}
		apply(ApplyPlanResultsType, cmd)
		for k := 0; k < 10; k++ {
			up := &AllocClientUpdateCommand{UpdatedAt: 5}
			for i := k * 1000; i < (k+1)*1000; i++ {
				a := cmd.AllocsUpdated[i]
				up.Allocs = append(up.Allocs, &structs.Allocation{ID: a.ID, ClientStatus: "running", ClientDescription: "Tasks are running", ModifyTime: 5,
					TaskStates: map[string]*structs.TaskState{"t": {State: "running", StartedAt: time.Now()}}})
			}
			apply(AllocClientUpdateType, up)
		}
	}
	var m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)
	writeHeapProfile(t)
	var snap bytes.Buffer
	start := time.Now()
	if err := f.State().Snapshot().Persist(&snap); err != nil {
		t.Fatal(err)
	}
	t.Logf("persisted %d MB in %s", snap.Len()>>20, time.Since(start))
	var m2, m3 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m2)
	start = time.Now()
	restored, err := state.Restore(bytes.NewReader(snap.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restored in %s", time.Since(start))
	runtime.GC()
	runtime.ReadMemStats(&m3)
	runtime.KeepAlive(f)
	runtime.KeepAlive(restored)
	runtime.KeepAlive(&snap)
	return m0.HeapAlloc >> 20, (m1.HeapAlloc - m0.HeapAlloc) >> 20, (m3.HeapAlloc - m2.HeapAlloc) >> 20
}

// writeHeapProfile writes the live heap to $BERTH_STATE_HEAPPROFILE when
// set, while the state is still reachable (a -memprofile is written after
// the benchmark, when it is gone).
func writeHeapProfile(t testing.TB) {
	path := os.Getenv("BERTH_STATE_HEAPPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}
