package state

import (
	"bytes"
	"reflect"
	"testing"
	"unsafe"

	"github.com/berth-dev/berth/structs"
)

// resourcesKey encodes every field of these structs; a field added to one
// of them must be added to the key (or make the block unshareable).
func TestResourcesKeyCoversFields(t *testing.T) {
	for _, tc := range []struct {
		v      any
		fields int
	}{
		{structs.AllocatedResources{}, 2},
		{structs.AllocatedTaskResources{}, 4},
		{structs.AllocatedCpuResources{}, 2},
		{structs.AllocatedMemoryResources{}, 2},
		{structs.AllocatedSharedResources{}, 3},
	} {
		if n := reflect.TypeOf(tc.v).NumField(); n != tc.fields {
			t.Errorf("%T has %d fields, resourcesKey knows %d: extend it", tc.v, n, tc.fields)
		}
	}
}

func plannedAlloc(id, node string, mem int64, metric *structs.AllocMetric) *structs.Allocation {
	return &structs.Allocation{
		ID: id, Namespace: "default", JobID: "web", EvalID: "e1", NodeID: node, NodeName: "n-" + node, TaskGroup: "g",
		Name: "web.g[" + id + "]", DesiredStatus: "run", Metrics: metric,
		AllocatedResources: &structs.AllocatedResources{
			Tasks:  map[string]*structs.AllocatedTaskResources{"t": {Cpu: structs.AllocatedCpuResources{CpuShares: 100}, Memory: structs.AllocatedMemoryResources{MemoryMB: mem}}},
			Shared: structs.AllocatedSharedResources{DiskMB: 300},
		},
	}
}

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// Allocations one plan places for one group share their metric, equal
// resource blocks and repeated strings; what differs stays their own.
func TestPlanResultsShareWhatIsEqual(t *testing.T) {
	s := newStore(t)
	j := job("default", "web", structs.JobTypeService)
	node := &structs.Node{ID: "node-1", Name: "n-node-1", Status: structs.NodeStatusReady}
	write(t, s, func(t *Txn) error {
		if err := t.UpsertNode(1, node); err != nil {
			return err
		}
		return t.UpsertJob(2, j)
	})
	m1 := &structs.AllocMetric{NodesEvaluated: 3}
	m2 := &structs.AllocMetric{NodesEvaluated: 5}
	withPorts := plannedAlloc("a4", "node-1", 64, m2)
	withPorts.AllocatedResources.Shared.Ports = []structs.AllocatedPortMapping{{Label: "http", Value: 20000}}
	// strings as a decoder makes them: separate copies
	clone := func(s string) string { return string([]byte(s)) }
	a2 := plannedAlloc("a2", clone("node-1"), 64, m2)
	a2.EvalID, a2.JobID = clone("e1"), clone("web")
	write(t, s, func(t *Txn) error {
		return t.UpsertPlanResults(3, &PlanResults{Job: j, AllocsUpdated: []*structs.Allocation{
			plannedAlloc("a1", "node-1", 64, m1), a2, plannedAlloc("a3", "node-1", 128, m2), withPorts,
		}})
	})
	get := func(id string) *structs.Allocation {
		a, err := s.AllocByID(nil, id)
		if err != nil || a == nil {
			t.Fatalf("alloc %s: %v", id, err)
		}
		return a
	}
	a1, b2, a3, a4 := get("a1"), get("a2"), get("a3"), get("a4")
	if a1.Metrics != b2.Metrics || a1.Metrics != a3.Metrics || a1.Metrics.NodesEvaluated != 3 {
		t.Errorf("metrics not shared per group: %p %p %p", a1.Metrics, b2.Metrics, a3.Metrics)
	}
	if a1.AllocatedResources != b2.AllocatedResources {
		t.Error("equal resource blocks not shared")
	}
	if a3.AllocatedResources == a1.AllocatedResources || a3.AllocatedResources.Tasks["t"].Memory.MemoryMB != 128 {
		t.Error("different resources shared")
	}
	if a4.AllocatedResources == a1.AllocatedResources || len(a4.AllocatedResources.Shared.Ports) != 1 {
		t.Error("a block with ports was shared")
	}
	stored, _ := s.NodeByID(nil, "node-1")
	if !sameString(b2.NodeID, stored.ID) || !sameString(b2.EvalID, a1.EvalID) || !sameString(b2.JobID, j.ID) {
		t.Error("repeated strings not interned")
	}
	if b2.NodeID != "node-1" || b2.EvalID != "e1" || b2.JobID != "web" || b2.Name != "web.g[a2]" {
		t.Errorf("interning changed values: %+v", b2)
	}
}

// A restored snapshot shares the allocations' equal jobs (a snapshot
// carries one copy per allocation), metrics and resources, and is still
// equal to the store that was persisted.
func TestRestoreSharesJobsAndMetrics(t *testing.T) {
	s := newStore(t)
	j := job("default", "web", structs.JobTypeService)
	write(t, s, func(t *Txn) error {
		if err := t.UpsertNode(1, &structs.Node{ID: "node-1", Name: "n-node-1", Status: structs.NodeStatusReady}); err != nil {
			return err
		}
		return t.UpsertJob(2, j)
	})
	stored, _ := s.JobByID(nil, "default", "web")
	m := &structs.AllocMetric{NodesEvaluated: 3, Scores: map[string]float64{"x": 1}}
	write(t, s, func(t *Txn) error {
		return t.UpsertPlanResults(3, &PlanResults{Job: stored, AllocsUpdated: []*structs.Allocation{
			plannedAlloc("a1", "node-1", 64, m), plannedAlloc("a2", "node-1", 64, m.Copy()),
		}})
	})
	restored, err := Restore(bytes.NewReader(persistBytes(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if d := diffStores(t, s, restored); d != "" {
		t.Fatalf("restored store differs (-orig +restored):\n%s", d)
	}
	a1, _ := restored.AllocByID(nil, "a1")
	a2, _ := restored.AllocByID(nil, "a2")
	if a1.Job == nil || a1.Job != a2.Job {
		t.Error("restored allocations do not share their job")
	}
	if a1.Metrics != a2.Metrics || a1.AllocatedResources != a2.AllocatedResources {
		t.Error("restored allocations do not share equal metrics and resources")
	}
}
