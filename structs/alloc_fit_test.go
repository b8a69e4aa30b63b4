package structs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func fitNode() *Node {
	return &Node{
		ID: "n1",
		NodeResources: &NodeResources{
			Cpu:    NodeCpuResources{CpuShares: 4000, TotalCpuCores: 4},
			Memory: NodeMemoryResources{MemoryMB: 8192},
			Disk:   NodeDiskResources{DiskMB: 10000},
		},
		ReservedResources: &NodeReservedResources{
			Cpu:      NodeReservedCpuResources{CpuShares: 500},
			Memory:   NodeReservedMemoryResources{MemoryMB: 192},
			Networks: NodeReservedNetworkResources{ReservedHostPorts: "22,80,8000-8100"},
		},
	}
}

func fitAlloc(cpu, mem, disk int64, ports ...int) *Allocation {
	ar := &AllocatedResources{
		Tasks: map[string]*AllocatedTaskResources{
			"web": {Cpu: AllocatedCpuResources{CpuShares: cpu}, Memory: AllocatedMemoryResources{MemoryMB: mem}},
		},
		Shared: AllocatedSharedResources{DiskMB: disk},
	}
	if len(ports) > 0 {
		nw := &NetworkResource{Mode: "host"}
		for i, p := range ports {
			lbl := string(rune('a' + i))
			ar.Shared.Ports = append(ar.Shared.Ports, AllocatedPortMapping{Label: lbl, Value: p})
			nw.DynamicPorts = append(nw.DynamicPorts, Port{Label: lbl, Value: p})
		}
		ar.Shared.Networks = []*NetworkResource{nw}
	}
	return &Allocation{ID: "a", DesiredStatus: AllocDesiredStatusRun, ClientStatus: AllocClientStatusRunning, AllocatedResources: ar}
}

func TestAllocsFit(t *testing.T) {
	cases := []struct {
		name   string
		allocs []*Allocation
		ports  bool
		fit    bool
		dim    string
	}{
		{"empty", nil, true, true, ""},
		{"fits exactly", []*Allocation{fitAlloc(3500, 8000, 10000)}, true, true, ""},
		{"cpu", []*Allocation{fitAlloc(2000, 100, 0), fitAlloc(1501, 100, 0)}, false, false, DimensionCPU},
		{"memory", []*Allocation{fitAlloc(10, 8001, 0)}, false, false, DimensionMemory},
		{"disk", []*Allocation{fitAlloc(10, 10, 10001)}, false, false, DimensionDisk},
		{"port twice", []*Allocation{fitAlloc(10, 10, 0, 20000), fitAlloc(10, 10, 0, 20001, 20000)}, true, false, "port 20000 collision"},
		{"port twice unchecked", []*Allocation{fitAlloc(10, 10, 0, 20000), fitAlloc(10, 10, 0, 20000)}, false, true, ""},
		{"port reserved by node", []*Allocation{fitAlloc(10, 10, 0, 8050)}, true, false, "port 8050 collision"},
		{"same port in Ports and Networks of one alloc", []*Allocation{fitAlloc(10, 10, 0, 30000, 30001)}, true, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fit, dim, _, err := AllocsFit(fitNode(), tc.allocs, tc.ports)
			if err != nil {
				t.Fatal(err)
			}
			if fit != tc.fit || dim != tc.dim {
				t.Fatalf("got fit=%v dim=%q, want fit=%v dim=%q", fit, dim, tc.fit, tc.dim)
			}
		})
	}
}

func TestAllocsFitIgnoresTerminal(t *testing.T) {
	big := fitAlloc(3000, 8000, 0, 20000)
	big.DesiredStatus = AllocDesiredStatusStop
	fit, dim, used, err := AllocsFit(fitNode(), []*Allocation{big, fitAlloc(3000, 8000, 0, 20000)}, true)
	if err != nil || !fit {
		t.Fatalf("fit=%v dim=%q err=%v", fit, dim, err)
	}
	if used.CpuShares != 3000 || used.MemoryMB != 8000 {
		t.Fatalf("used %+v", used)
	}
}

func TestAllocsFitCores(t *testing.T) {
	withCores := func(cores ...uint16) *Allocation {
		a := fitAlloc(0, 10, 0)
		a.AllocatedResources.Tasks["web"].Cpu.ReservedCores = cores
		return a
	}
	n := fitNode()
	n.ReservedResources.Cpu.ReservedCores = []uint16{3}
	for _, tc := range []struct {
		name   string
		allocs []*Allocation
		fit    bool
	}{
		{"distinct", []*Allocation{withCores(0), withCores(1, 2)}, true},
		{"twice", []*Allocation{withCores(0), withCores(0)}, false},
		{"reserved by node", []*Allocation{withCores(3)}, false},
		{"beyond node", []*Allocation{withCores(7)}, false},
		{"too many", []*Allocation{withCores(0, 1, 2, 3)}, false},
	} {
		fit, dim, _, err := AllocsFit(n, tc.allocs, false)
		if err != nil {
			t.Fatal(err)
		}
		if fit != tc.fit || (!fit && dim != DimensionCores) {
			t.Errorf("%s: fit=%v dim=%q", tc.name, fit, dim)
		}
	}
}

func TestAllocsFitBadReservedPorts(t *testing.T) {
	n := fitNode()
	n.ReservedResources.Networks.ReservedHostPorts = "22,x"
	if _, _, _, err := AllocsFit(n, nil, true); err == nil {
		t.Fatal("want error for bad port spec")
	}
}

func TestComparableResourcesArithmetic(t *testing.T) {
	a := fitAlloc(100, 200, 300).ComparableResources()
	b := fitAlloc(10, 20, 30).ComparableResources()
	sum := a.Copy()
	sum.Add(b)
	want := &ComparableResources{CpuShares: 110, MemoryMB: 220, MemoryMaxMB: 220, DiskMB: 330}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Fatalf("add (-want +got):\n%s", diff)
	}
	if ok, _ := sum.Superset(a); !ok {
		t.Fatal("sum must be a superset of a")
	}
	if ok, dim := b.Superset(a); ok || dim != DimensionCPU {
		t.Fatalf("b superset of a: %v %q", ok, dim)
	}
	sum.Subtract(b)
	if diff := cmp.Diff(a, sum); diff != "" {
		t.Fatalf("subtract (-want +got):\n%s", diff)
	}
}

func TestParsePortSpec(t *testing.T) {
	var got []int
	if err := ParsePortSpec(" 22, 80,100-102 ", func(p int) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{22, 80, 100, 101, 102}, got); diff != "" {
		t.Fatal(diff)
	}
	for _, bad := range []string{"a", "5-1", "70000", "1-x"} {
		if err := ParsePortSpec(bad, func(int) {}); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func BenchmarkAllocsFit(b *testing.B) {
	n := fitNode()
	var allocs []*Allocation
	for i := range 20 {
		allocs = append(allocs, fitAlloc(100, 100, 100, 20000+i))
	}
	b.ReportAllocs()
	for b.Loop() {
		AllocsFit(n, allocs, true)
	}
}
