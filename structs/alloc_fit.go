package structs

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Dimensions AllocsFit and ComparableResources.Superset report as exhausted.
const (
	DimensionCPU    = "cpu"
	DimensionMemory = "memory"
	DimensionDisk   = "disk"
	DimensionCores  = "cores"
)

// ComparableResources is an allocation's (or a node's) resources reduced to
// what can be added up and compared: CPU shares, memory, disk and reserved
// cores.
type ComparableResources struct {
	CpuShares   int64
	MemoryMB    int64
	MemoryMaxMB int64
	DiskMB      int64
	// Cores is the number of whole cores; ReservedCores their IDs when known.
	Cores         int
	ReservedCores []uint16
}

// Add adds delta to r.
func (r *ComparableResources) Add(delta *ComparableResources) {
	if delta == nil {
		return
	}
	r.CpuShares += delta.CpuShares
	r.MemoryMB += delta.MemoryMB
	r.MemoryMaxMB += delta.MemoryMaxMB
	r.DiskMB += delta.DiskMB
	r.Cores += delta.Cores
	r.ReservedCores = append(r.ReservedCores, delta.ReservedCores...)
}

// Subtract removes delta from r.
func (r *ComparableResources) Subtract(delta *ComparableResources) {
	if delta == nil {
		return
	}
	r.CpuShares -= delta.CpuShares
	r.MemoryMB -= delta.MemoryMB
	r.MemoryMaxMB -= delta.MemoryMaxMB
	r.DiskMB -= delta.DiskMB
	r.Cores -= delta.Cores
	if len(delta.ReservedCores) > 0 && len(r.ReservedCores) > 0 {
		out := r.ReservedCores[:0]
		for _, c := range r.ReservedCores {
			if !containsCore(delta.ReservedCores, c) {
				out = append(out, c)
			}
		}
		r.ReservedCores = out
	}
}

// Superset reports whether r has at least other's resources, and if not,
// the first dimension that falls short.
func (r *ComparableResources) Superset(other *ComparableResources) (bool, string) {
	if other == nil {
		return true, ""
	}
	switch {
	case r.CpuShares < other.CpuShares:
		return false, DimensionCPU
	case r.Cores < other.Cores:
		return false, DimensionCores
	case r.MemoryMB < other.MemoryMB:
		return false, DimensionMemory
	case r.DiskMB < other.DiskMB:
		return false, DimensionDisk
	}
	for _, c := range other.ReservedCores {
		if len(r.ReservedCores) > 0 && !containsCore(r.ReservedCores, c) {
			return false, DimensionCores
		}
	}
	return true, ""
}

// Copy returns a deep copy.
func (r *ComparableResources) Copy() *ComparableResources {
	if r == nil {
		return nil
	}
	c := *r
	c.ReservedCores = append([]uint16(nil), r.ReservedCores...)
	return &c
}

func containsCore(cores []uint16, c uint16) bool {
	for _, x := range cores {
		if x == c {
			return true
		}
	}
	return false
}

// ComparableResources sums the allocation's resources.
func (a *Allocation) ComparableResources() *ComparableResources {
	c := &ComparableResources{}
	if a == nil {
		return c
	}
	addAllocResources(c, a.AllocatedResources, true)
	return c
}

// addAllocResources adds ar to c; withCoreIDs also collects core IDs.
func addAllocResources(c *ComparableResources, ar *AllocatedResources, withCoreIDs bool) {
	if ar == nil {
		return
	}
	for _, t := range ar.Tasks {
		if t == nil {
			continue
		}
		c.CpuShares += t.Cpu.CpuShares
		c.MemoryMB += t.Memory.MemoryMB
		if t.Memory.MemoryMaxMB > t.Memory.MemoryMB {
			c.MemoryMaxMB += t.Memory.MemoryMaxMB
		} else {
			c.MemoryMaxMB += t.Memory.MemoryMB
		}
		c.Cores += len(t.Cpu.ReservedCores)
		if withCoreIDs {
			c.ReservedCores = append(c.ReservedCores, t.Cpu.ReservedCores...)
		}
	}
	c.DiskMB += ar.Shared.DiskMB
}

// NodeCapacity is what the node offers to allocations: its resources minus
// what it reserves for itself.
func NodeCapacity(n *Node) *ComparableResources {
	c := &ComparableResources{}
	nodeCapacity(n, c)
	return c
}

func nodeCapacity(n *Node, c *ComparableResources) {
	if n == nil || n.NodeResources == nil {
		return
	}
	nr := n.NodeResources
	c.CpuShares = nr.Cpu.CpuShares
	c.MemoryMB = nr.Memory.MemoryMB
	c.MemoryMaxMB = nr.Memory.MemoryMB
	c.DiskMB = nr.Disk.DiskMB
	c.Cores = len(nr.Cpu.ReservableCpuCores)
	if c.Cores == 0 {
		c.Cores = int(nr.Cpu.TotalCpuCores)
	}
	if rr := n.ReservedResources; rr != nil {
		c.CpuShares -= int64(rr.Cpu.CpuShares)
		c.MemoryMB -= int64(rr.Memory.MemoryMB)
		c.MemoryMaxMB -= int64(rr.Memory.MemoryMB)
		c.DiskMB -= int64(rr.Disk.DiskMB)
		c.Cores -= len(rr.Cpu.ReservedCores)
	}
}

// NodeCoreAvailable reports whether core id may be reserved by an
// allocation on the node.
func NodeCoreAvailable(n *Node, id uint16) bool {
	if n == nil || n.NodeResources == nil {
		return false
	}
	cpu := n.NodeResources.Cpu
	if len(cpu.ReservableCpuCores) > 0 {
		if !containsCore(cpu.ReservableCpuCores, id) {
			return false
		}
	} else if id >= cpu.TotalCpuCores {
		return false
	}
	if n.ReservedResources != nil && containsCore(n.ReservedResources.Cpu.ReservedCores, id) {
		return false
	}
	return true
}

// PortBitmap is a set of host ports 0..65535.
type PortBitmap [1024]uint64

// Has reports whether port p is in the set.
func (b *PortBitmap) Has(p int) bool {
	if p < 0 || p > MaxValidPort {
		return false
	}
	return b[p>>6]&(1<<(uint(p)&63)) != 0
}

// Set adds port p to the set.
func (b *PortBitmap) Set(p int) {
	if p < 0 || p > MaxValidPort {
		return
	}
	b[p>>6] |= 1 << (uint(p) & 63)
}

// Clear removes port p from the set.
func (b *PortBitmap) Clear(p int) {
	if p < 0 || p > MaxValidPort {
		return
	}
	b[p>>6] &^= 1 << (uint(p) & 63)
}

var portBitmapPool = sync.Pool{New: func() any { return new(PortBitmap) }}

// ParsePortSpec parses a reserved host port list such as "22,80,8000-8100"
// and calls fn for each port.
func ParsePortSpec(spec string, fn func(port int)) error {
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		start, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return fmt.Errorf("invalid port %q: %w", part, err)
		}
		end := start
		if isRange {
			if end, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return fmt.Errorf("invalid port range %q: %w", part, err)
			}
		}
		if start < 0 || end > MaxValidPort || start > end {
			return fmt.Errorf("invalid port range %q", part)
		}
		for p := start; p <= end; p++ {
			fn(p)
		}
	}
	return nil
}

// AllocPorts calls fn once for every host port the allocation holds: its
// shared port mappings and the reserved and dynamic ports of its group and
// task networks. A port listed in more than one of those places (Shared.Ports
// usually repeats Shared.Networks) is reported once.
func AllocPorts(ar *AllocatedResources, fn func(port int)) {
	if ar == nil {
		return
	}
	var stack [32]int
	seen := stack[:0]
	emit := func(p int) {
		for _, s := range seen {
			if s == p {
				return
			}
		}
		seen = append(seen, p)
		fn(p)
	}
	for i := range ar.Shared.Ports {
		emit(ar.Shared.Ports[i].Value)
	}
	emitNets := func(nets []*NetworkResource) {
		for _, n := range nets {
			if n == nil {
				continue
			}
			for i := range n.ReservedPorts {
				emit(n.ReservedPorts[i].Value)
			}
			for i := range n.DynamicPorts {
				emit(n.DynamicPorts[i].Value)
			}
		}
	}
	emitNets(ar.Shared.Networks)
	for _, t := range ar.Tasks {
		if t != nil {
			emitNets(t.Networks)
		}
	}
}

// AllocsFit reports whether the non-terminal allocations fit on the node:
// their summed CPU, memory, disk and cores within the node's capacity minus
// what it reserves, no reserved core given twice, and with checkPorts no
// host port used twice or reserved by the node. dimension names what is
// exhausted ("cpu", "memory", "disk", "cores", "port 8080 collision");
// used is the sum of the allocations' resources.
func AllocsFit(node *Node, allocs []*Allocation, checkPorts bool) (fit bool, dimension string, used *ComparableResources, err error) {
	used = &ComparableResources{}
	var coreBits [8]uint64 // cores 0..511 without allocating
	var coreMap map[uint16]bool
	coreDup := false
	var ports *PortBitmap
	collision := -1
	if checkPorts {
		ports = portBitmapPool.Get().(*PortBitmap)
		*ports = PortBitmap{}
		defer portBitmapPool.Put(ports)
		if rr := node.ReservedResources; rr != nil && rr.Networks.ReservedHostPorts != "" {
			if err := ParsePortSpec(rr.Networks.ReservedHostPorts, ports.Set); err != nil {
				return false, "", used, fmt.Errorf("node %s reserved host ports: %w", node.ID, err)
			}
		}
	}
	coreBad := false
	for _, a := range allocs {
		if a == nil || a.TerminalStatus() || a.AllocatedResources == nil {
			continue
		}
		ar := a.AllocatedResources
		addAllocResources(used, ar, false)
		for _, t := range ar.Tasks {
			if t == nil {
				continue
			}
			for _, c := range t.Cpu.ReservedCores {
				if !coreBad && !NodeCoreAvailable(node, c) {
					coreBad = true
				}
				if c < 512 {
					bit := uint64(1) << (c & 63)
					if coreBits[c>>6]&bit != 0 {
						coreDup = true
					}
					coreBits[c>>6] |= bit
				} else {
					if coreMap == nil {
						coreMap = map[uint16]bool{}
					}
					if coreMap[c] {
						coreDup = true
					}
					coreMap[c] = true
				}
			}
		}
		if checkPorts && collision < 0 {
			AllocPorts(ar, func(p int) {
				if collision >= 0 || p <= 0 {
					return
				}
				if ports.Has(p) {
					collision = p
					return
				}
				ports.Set(p)
			})
		}
	}
	var capacity ComparableResources
	nodeCapacity(node, &capacity)
	if ok, dim := capacity.Superset(used); !ok {
		return false, dim, used, nil
	}
	if coreDup || coreBad {
		return false, DimensionCores, used, nil
	}
	if collision >= 0 {
		return false, fmt.Sprintf("port %d collision", collision), used, nil
	}
	return true, "", used, nil
}
