package scheduler_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

func TestConstraintFiltersAndExplains(t *testing.T) {
	h := cluster(t, 10)
	n := schedtest.Node(100)
	n.Attributes["kernel.name"] = "windows"
	n.ComputedClass = scheduler.ComputeNodeClass(n)
	h.State.UpsertNode(n)
	j := jobWithCount("web", 3)
	j.Constraints = []*structs.Constraint{{LTarget: "${attr.kernel.name}", Operand: "=", RTarget: "windows"}}
	run(t, h, j)
	for _, a := range live(h, j) {
		if a.NodeID != n.ID {
			t.Fatalf("placed on %s, which does not meet the constraint", a.NodeName)
		}
	}
	// Nothing meets an impossible constraint: the eval explains why.
	j2 := jobWithCount("never", 2)
	j2.TaskGroups[0].Constraints = []*structs.Constraint{{LTarget: "${meta.rack}", Operand: "=", RTarget: "nowhere"}}
	e := run(t, h, j2)
	m := e.FailedTGAllocs["web"]
	if m == nil {
		t.Fatalf("no failed metric: %+v", e)
	}
	if m.NodesEvaluated != 11 || m.NodesFiltered != 11 || m.ConstraintFiltered["${meta.rack} = nowhere"] != 11 || m.CoalescedFailures != 1 {
		t.Fatalf("metric %+v", m)
	}
	if e.QueuedAllocations["web"] != 2 || e.BlockedEval == "" {
		t.Fatalf("queued %v blocked %q", e.QueuedAllocations, e.BlockedEval)
	}
	b := h.Created[len(h.Created)-1]
	if b.ID != e.BlockedEval || b.Status != structs.EvalStatusBlocked || b.EscapedComputedClass || len(b.ClassEligibility) != 5 { // 4 racks + windows
		t.Fatalf("blocked eval %+v", b)
	}
	for _, ok := range b.ClassEligibility {
		if ok {
			t.Fatalf("class eligible: %v", b.ClassEligibility)
		}
	}
}

func TestFeasibilityScope(t *testing.T) {
	h := schedtest.New()
	mk := func(i int, mut func(*structs.Node)) *structs.Node {
		n := schedtest.Node(i)
		mut(n)
		n.ComputedClass = scheduler.ComputeNodeClass(n)
		h.State.UpsertNode(n)
		return n
	}
	good := mk(0, func(n *structs.Node) { n.Datacenter = "dc7" })
	mk(1, func(n *structs.Node) { n.Datacenter = "eu1" })
	mk(2, func(n *structs.Node) { n.Datacenter = "dc2"; n.NodePool = "gpu" })
	mk(3, func(n *structs.Node) { n.Datacenter = "dc3"; n.Status = structs.NodeStatusDown })
	mk(4, func(n *structs.Node) {
		n.Datacenter = "dc4"
		n.SchedulingEligibility = structs.NodeSchedulingIneligible
	})
	mk(5, func(n *structs.Node) { n.Datacenter = "dc5"; n.Drivers["docker"].Healthy = false })
	mk(6, func(n *structs.Node) { n.Datacenter = "dc6"; delete(n.Drivers, "docker") })
	exec := mk(7, func(n *structs.Node) { n.Datacenter = "dc8"; delete(n.Drivers, "docker") })
	j := jobWithCount("web", 4)
	run(t, h, j)
	for _, a := range live(h, j) {
		if a.NodeID != good.ID {
			t.Fatalf("placed on %s", a.NodeName)
		}
	}
	// Driver by attribute, and node pool "all".
	j2 := jobWithCount("exec", 1)
	j2.TaskGroups[0].Tasks[0].Driver = "exec"
	j2.NodePool = "all"
	j2.Datacenters = []string{"dc8"}
	run(t, h, j2)
	if a := live(h, j2); len(a) != 1 || a[0].NodeID != exec.ID {
		t.Fatalf("exec placed %v", nodesUsed(a))
	}
	j3 := jobWithCount("gpu", 1)
	j3.NodePool = "gpu"
	run(t, h, j3)
	if a := live(h, j3); len(a) != 1 || a[0].NodeName != "node-2" {
		t.Fatalf("gpu pool placed %v", nodesUsed(a))
	}
}

func TestDistinctHostsAndProperty(t *testing.T) {
	h := cluster(t, 8)
	j := jobWithCount("web", 8)
	j.Constraints = []*structs.Constraint{{Operand: structs.ConstraintDistinctHosts}}
	run(t, h, j)
	if used := nodesUsed(live(h, j)); len(used) != 8 {
		t.Fatalf("distinct_hosts: %v", used)
	}
	j2 := jobWithCount("racks", 6)
	j2.TaskGroups[0].Constraints = []*structs.Constraint{{LTarget: "${meta.rack}", Operand: structs.ConstraintDistinctProperty, RTarget: "1"}}
	e := run(t, h, j2)
	if got := len(live(h, j2)); got != 4 {
		t.Fatalf("distinct_property placed %d, want 4 (racks)", got)
	}
	if e.FailedTGAllocs["web"] == nil || e.QueuedAllocations["web"] != 2 {
		t.Fatalf("failed %+v queued %v", e.FailedTGAllocs, e.QueuedAllocations)
	}
}

func TestResourceExhaustionExplained(t *testing.T) {
	h := cluster(t, 3)
	j := jobWithCount("big", 4)
	j.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 3000, MemoryMB: 1024}
	e := run(t, h, j)
	if got := len(live(h, j)); got != 3 {
		t.Fatalf("placed %d", got)
	}
	m := e.FailedTGAllocs["web"]
	if m == nil || m.NodesExhausted != 3 || m.DimensionExhausted[structs.DimensionCPU] != 3 {
		t.Fatalf("metric %+v", m)
	}
	j2 := jobWithCount("mem", 1)
	j2.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 10, MemoryMB: 9000}
	e = run(t, h, j2)
	if m := e.FailedTGAllocs["web"]; m == nil || m.DimensionExhausted[structs.DimensionMemory] != 3 {
		t.Fatalf("metric %+v", e.FailedTGAllocs)
	}
	j3 := jobWithCount("disk", 1)
	j3.TaskGroups[0].EphemeralDisk.SizeMB = 200 * 1024
	e = run(t, h, j3)
	if m := e.FailedTGAllocs["web"]; m == nil || m.DimensionExhausted[structs.DimensionDisk] != 3 {
		t.Fatalf("metric %+v", e.FailedTGAllocs)
	}
}

func TestCoresAndDevices(t *testing.T) {
	h := cluster(t, 1)
	n := schedtest.Node(1)
	n.Attributes["device.nvidia/gpu/a100"] = "2"
	n.ComputedClass = scheduler.ComputeNodeClass(n)
	h.State.UpsertNode(n)
	j := jobWithCount("cores", 2)
	j.TaskGroups[0].Tasks[0].Resources = &structs.Resources{Cores: 2, MemoryMB: 128}
	run(t, h, j)
	seen := map[string]map[uint16]bool{}
	for _, a := range live(h, j) {
		cores := a.AllocatedResources.Tasks["server"].Cpu.ReservedCores
		if len(cores) != 2 || a.AllocatedResources.Tasks["server"].Cpu.CpuShares != 2000 {
			t.Fatalf("cores %+v", a.AllocatedResources.Tasks["server"].Cpu)
		}
		if seen[a.NodeID] == nil {
			seen[a.NodeID] = map[uint16]bool{}
		}
		for _, c := range cores {
			if seen[a.NodeID][c] {
				t.Fatalf("core %d given twice on %s", c, a.NodeName)
			}
			seen[a.NodeID][c] = true
		}
	}
	g := jobWithCount("gpu", 3)
	g.TaskGroups[0].Tasks[0].Resources.Devices = []*structs.RequestedDevice{{Name: "nvidia/gpu", Count: 1}}
	e := run(t, h, g)
	allocs := live(h, g)
	if len(allocs) != 2 || e.QueuedAllocations["web"] != 1 {
		t.Fatalf("gpu placed %d queued %v", len(allocs), e.QueuedAllocations)
	}
	ids := map[string]bool{}
	for _, a := range allocs {
		devs := a.AllocatedResources.Tasks["server"].Devices
		if a.NodeID != n.ID || len(devs) != 1 || devs[0].Name != "a100" || ids[devs[0].DeviceIDs[0]] {
			t.Fatalf("devices %+v", devs)
		}
		ids[devs[0].DeviceIDs[0]] = true
	}
}

func TestPorts(t *testing.T) {
	h := cluster(t, 2)
	j := jobWithCount("static", 3)
	j.TaskGroups[0].Networks = []*structs.NetworkResource{{
		Mode:          "host",
		ReservedPorts: []structs.Port{{Label: "http", Value: 8080}},
		DynamicPorts:  []structs.Port{{Label: "admin", To: -1}},
	}}
	e := run(t, h, j)
	allocs := live(h, j)
	if len(allocs) != 2 || len(nodesUsed(allocs)) != 2 {
		t.Fatalf("static port 8080 placed %d allocs on %v", len(allocs), nodesUsed(allocs))
	}
	m := e.FailedTGAllocs["web"]
	if m == nil || m.DimensionExhausted["network: reserved port collision http=8080"] != 2 {
		t.Fatalf("metric %+v", m)
	}
	for _, a := range allocs {
		ports := a.AllocatedResources.Shared.Ports
		if len(ports) != 2 || ports[0].Value != 8080 || ports[1].Value < 20000 || ports[1].Value > 32000 || ports[1].To != ports[1].Value {
			t.Fatalf("ports %+v", ports)
		}
		if ports[0].HostIP == "" || a.AllocatedResources.Shared.Networks[0].DynamicPorts[0].Value != ports[1].Value {
			t.Fatalf("networks %+v", a.AllocatedResources.Shared.Networks[0])
		}
	}
	// A port the node reserves is never given.
	j2 := jobWithCount("ssh", 1)
	j2.TaskGroups[0].Networks = []*structs.NetworkResource{{ReservedPorts: []structs.Port{{Label: "ssh", Value: 22}}}}
	if e := run(t, h, j2); e.FailedTGAllocs["web"] == nil {
		t.Fatal("port 22 given although reserved by the node")
	}
}

func TestDynamicPortsUniqueOnOneNode(t *testing.T) {
	h := cluster(t, 1)
	n, _ := h.State.NodeByID(schedtest.Node(0).ID)
	n.NodeResources.MinDynamicPort, n.NodeResources.MaxDynamicPort = 30000, 30199
	j := jobWithCount("many", 30)
	j.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 10, MemoryMB: 10}
	j.TaskGroups[0].EphemeralDisk.SizeMB = 10
	j.TaskGroups[0].Networks = []*structs.NetworkResource{{DynamicPorts: []structs.Port{{Label: "a"}, {Label: "b"}, {Label: "c"}, {Label: "d"}, {Label: "e"}}}}
	run(t, h, j)
	// 200 ports in range / 5 per alloc = 40 fit; 30 asked.
	allocs := live(h, j)
	if len(allocs) != 30 {
		t.Fatalf("placed %d", len(allocs))
	}
	seen := map[int]string{}
	for _, a := range allocs {
		for _, p := range a.AllocatedResources.Shared.Ports {
			if p.Value < 30000 || p.Value > 30199 {
				t.Fatalf("port %d out of range", p.Value)
			}
			if other, dup := seen[p.Value]; dup {
				t.Fatalf("port %d given to %s and %s", p.Value, other, a.Name)
			}
			seen[p.Value] = a.Name
		}
	}
	// The range is then nearly full: 10 more fit, then it is exhausted.
	j2 := jobWithCount("more", 12)
	j2.TaskGroups[0] = j.TaskGroups[0].Copy()
	j2.TaskGroups[0].Count = 12
	e := run(t, h, j2)
	if got := len(live(h, j2)); got != 10 {
		t.Fatalf("second job placed %d, want 10", got)
	}
	if m := e.FailedTGAllocs["web"]; m == nil || !strings.Contains(strings.Join(keys(m.DimensionExhausted), ","), "dynamic port") {
		t.Fatalf("metric %+v", m)
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
