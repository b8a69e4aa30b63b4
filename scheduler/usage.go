package scheduler

import (
	"github.com/berth-dev/berth/structs"
)

// Default dynamic port range, as Nomad's.
const (
	defaultMinDynamicPort = 20000
	defaultMaxDynamicPort = 32000
)

// nodeUsage is what is used on one node as the plan stands: the state's
// live allocations minus the plan's stops and preemptions plus its
// placements. It is built the first time a node is considered and then
// kept up to date incrementally.
type nodeUsage struct {
	node *structs.Node

	capCPU, capMem, capDisk int64
	capCores                int
	mhzPerCore              int64

	cpu, mem, disk int64
	cores          int
	usedCores      []uint16

	// ports holds host ports in use, including those the node reserves.
	ports map[int]struct{}
	// badPortSpec is set when the node's reserved port list does not parse.
	badPortSpec bool

	// jobCount and tgCount count the live allocations of the evaluated
	// job (per group) on the node.
	jobCount int
	tgCount  map[string]int

	// allocs are the live allocations on the node (for preemption).
	allocs []*structs.Allocation
}

func newNodeUsage(n *structs.Node, jobID, namespace string, allocs []*structs.Allocation, skip map[string]bool) *nodeUsage {
	u := &nodeUsage{node: n}
	c := structs.NodeCapacity(n)
	u.capCPU, u.capMem, u.capDisk, u.capCores = c.CpuShares, c.MemoryMB, c.DiskMB, c.Cores
	if nr := n.NodeResources; nr != nil && nr.Cpu.TotalCpuCores > 0 {
		u.mhzPerCore = nr.Cpu.CpuShares / int64(nr.Cpu.TotalCpuCores)
	}
	if rr := n.ReservedResources; rr != nil && rr.Networks.ReservedHostPorts != "" {
		u.ports = map[int]struct{}{}
		if err := structs.ParsePortSpec(rr.Networks.ReservedHostPorts, func(p int) { u.ports[p] = struct{}{} }); err != nil {
			u.badPortSpec = true
		}
	}
	for _, a := range allocs {
		if a.TerminalStatus() || skip[a.ID] {
			continue
		}
		u.add(a, jobID, namespace)
	}
	return u
}

// add accounts for a live allocation on the node.
func (u *nodeUsage) add(a *structs.Allocation, jobID, namespace string) {
	u.allocs = append(u.allocs, a)
	if a.JobID == jobID && a.Namespace == namespace {
		u.jobCount++
		if u.tgCount == nil {
			u.tgCount = make(map[string]int, 1)
		}
		u.tgCount[a.TaskGroup]++
	}
	ar := a.AllocatedResources
	if ar == nil {
		return
	}
	for _, t := range ar.Tasks {
		u.cpu += t.Cpu.CpuShares
		u.mem += t.Memory.MemoryMB
		u.cores += len(t.Cpu.ReservedCores)
		u.usedCores = append(u.usedCores, t.Cpu.ReservedCores...)
	}
	u.disk += ar.Shared.DiskMB
	structs.AllocPorts(ar, func(p int) {
		if u.ports == nil {
			u.ports = map[int]struct{}{}
		}
		u.ports[p] = struct{}{}
	})
}

// remove takes a live allocation off the node.
func (u *nodeUsage) remove(a *structs.Allocation, jobID, namespace string) {
	found := false
	for i, x := range u.allocs {
		if x.ID == a.ID {
			u.allocs = append(u.allocs[:i], u.allocs[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		return
	}
	if a.JobID == jobID && a.Namespace == namespace {
		u.jobCount--
		u.tgCount[a.TaskGroup]--
	}
	ar := a.AllocatedResources
	if ar == nil {
		return
	}
	for _, t := range ar.Tasks {
		u.cpu -= t.Cpu.CpuShares
		u.mem -= t.Memory.MemoryMB
		u.cores -= len(t.Cpu.ReservedCores)
		for _, c := range t.Cpu.ReservedCores {
			for i, x := range u.usedCores {
				if x == c {
					u.usedCores = append(u.usedCores[:i], u.usedCores[i+1:]...)
					break
				}
			}
		}
	}
	u.disk -= ar.Shared.DiskMB
	structs.AllocPorts(ar, func(p int) { delete(u.ports, p) })
	// A port the node reserves stays reserved.
	if rr := u.node.ReservedResources; rr != nil && rr.Networks.ReservedHostPorts != "" {
		_ = structs.ParsePortSpec(rr.Networks.ReservedHostPorts, func(p int) {
			if u.ports == nil {
				u.ports = map[int]struct{}{}
			}
			u.ports[p] = struct{}{}
		})
	}
}

func (u *nodeUsage) portUsed(p int) bool {
	_, ok := u.ports[p]
	return ok
}

// dynamicRange is the node's dynamic port range.
func (u *nodeUsage) dynamicRange() (int, int) {
	lo, hi := defaultMinDynamicPort, defaultMaxDynamicPort
	if nr := u.node.NodeResources; nr != nil {
		if nr.MinDynamicPort > 0 {
			lo = nr.MinDynamicPort
		}
		if nr.MaxDynamicPort > 0 {
			hi = nr.MaxDynamicPort
		}
	}
	return lo, hi
}

// freeDynamicPorts counts the free ports of the dynamic range, stopping
// once it has seen need of them.
func (u *nodeUsage) freeDynamicPorts(need int) int {
	lo, hi := u.dynamicRange()
	total := hi - lo + 1
	if len(u.ports) == 0 || total-len(u.ports) >= need {
		return total
	}
	free := 0
	for p := lo; p <= hi && free < need; p++ {
		if !u.portUsed(p) {
			free++
		}
	}
	return free
}

// fit checks the ask against the node's free resources. It returns the
// exhausted dimension, or "" when the ask fits.
func (u *nodeUsage) fit(ask *tgAsk) string {
	cpu := ask.cpu + int64(ask.cores)*u.mhzPerCore
	switch {
	case u.cpu+cpu > u.capCPU:
		return structs.DimensionCPU
	case ask.cores > 0 && u.cores+ask.cores > u.capCores:
		return structs.DimensionCores
	case u.mem+ask.mem > u.capMem:
		return structs.DimensionMemory
	case u.disk+ask.disk > u.capDisk:
		return structs.DimensionDisk
	}
	if ask.hasPorts {
		if u.badPortSpec {
			return "network: invalid reserved ports"
		}
		for _, sp := range ask.staticPorts {
			if u.portUsed(sp.Value) {
				return "network: reserved port collision " + sp.Label + "=" + itoa(sp.Value)
			}
		}
		if ask.dynamicCount > 0 && u.freeDynamicPorts(ask.dynamicCount) < ask.dynamicCount {
			return "network: dynamic port selection failed"
		}
	}
	if len(ask.devices) > 0 {
		if d := devicesFit(u, ask); d != "" {
			return d
		}
	}
	return ""
}

// freeCores returns up to n core IDs free on the node and not in exclude.
func (u *nodeUsage) freeCores(n int, exclude []uint16) []uint16 {
	if n == 0 {
		return nil
	}
	nr := u.node.NodeResources
	var candidates []uint16
	if len(nr.Cpu.ReservableCpuCores) > 0 {
		candidates = nr.Cpu.ReservableCpuCores
	} else {
		for i := uint16(0); i < nr.Cpu.TotalCpuCores; i++ {
			candidates = append(candidates, i)
		}
	}
	var out []uint16
	for _, c := range candidates {
		if len(out) == n {
			break
		}
		if !structs.NodeCoreAvailable(u.node, c) || containsU16(u.usedCores, c) || containsU16(exclude, c) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func containsU16(s []uint16, v uint16) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
