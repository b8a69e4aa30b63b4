package scheduler

import (
	"strconv"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// allocName is Nomad's allocation name: <job>.<group>[<index>].
func allocName(jobID, tg string, idx int) string {
	var b strings.Builder
	b.Grow(len(jobID) + len(tg) + 8)
	b.WriteString(jobID)
	b.WriteByte('.')
	b.WriteString(tg)
	b.WriteByte('[')
	b.WriteString(strconv.Itoa(idx))
	b.WriteByte(']')
	return b.String()
}

// allocIndex parses the index out of an allocation name, or -1.
func allocIndex(name string) int {
	l := strings.LastIndexByte(name, '[')
	if l < 0 || !strings.HasSuffix(name, "]") {
		return -1
	}
	i, err := strconv.Atoi(name[l+1 : len(name)-1])
	if err != nil {
		return -1
	}
	return i
}

// newAlloc builds a placement of the group on the candidate node, choosing
// its ports, cores and devices. It returns nil when the ports or devices
// cannot be given after all.
func (s *schedCtx) newAlloc(ask *tgAsk, c *candidate, name string, prev *structs.Allocation, metric *structs.AllocMetric) *structs.Allocation {
	u := c.u
	now := s.now()
	a := &structs.Allocation{
		ID:            s.cfg.NewID(),
		Namespace:     s.job.Namespace,
		EvalID:        s.eval.ID,
		Name:          name,
		NodeID:        c.node.ID,
		NodeName:      c.node.Name,
		JobID:         s.job.ID,
		TaskGroup:     ask.tg.Name,
		Metrics:       metric,
		DesiredStatus: structs.AllocDesiredStatusRun,
		ClientStatus:  structs.AllocClientStatusPending,
		CreateTime:    now,
		ModifyTime:    now,
	}
	if prev != nil {
		a.PreviousAllocation = prev.ID
	}
	ar := &structs.AllocatedResources{
		Tasks:  make(map[string]*structs.AllocatedTaskResources, len(ask.tasks)),
		Shared: structs.AllocatedSharedResources{DiskMB: ask.disk},
	}
	hostIP := c.node.Attributes["unique.network.ip-address"]
	var picked []int
	if ask.hasPorts {
		nets, ports, ok := s.assignNetworks(u, ask.networks, hostIP, &picked)
		if !ok {
			return nil
		}
		ar.Shared.Networks, ar.Shared.Ports = nets, ports
	}
	var devFree map[string]int
	if len(ask.devices) > 0 {
		devFree = deviceFree(u)
	}
	var givenCores []uint16
	for _, t := range ask.tasks {
		tr := &structs.AllocatedTaskResources{
			Cpu:    structs.AllocatedCpuResources{CpuShares: t.cpu},
			Memory: structs.AllocatedMemoryResources{MemoryMB: t.mem, MemoryMaxMB: t.memMax},
		}
		if t.cores > 0 {
			cores := u.freeCores(t.cores, givenCores)
			if len(cores) < t.cores {
				return nil
			}
			givenCores = append(givenCores, cores...)
			tr.Cpu.ReservedCores = cores
			tr.Cpu.CpuShares = int64(t.cores) * u.mhzPerCore
		}
		if len(t.networks) > 0 {
			nets, _, ok := s.assignNetworks(u, t.networks, hostIP, &picked)
			if !ok {
				return nil
			}
			tr.Networks = nets
		}
		if len(t.devices) > 0 {
			devs, ok := assignDevices(devFree, t.devices)
			if !ok {
				return nil
			}
			tr.Devices = devs
		}
		ar.Tasks[t.name] = tr
	}
	a.AllocatedResources = ar
	return a
}

// assignNetworks copies the networks with host ports chosen for their
// dynamic ports, and returns the port mappings.
func (s *schedCtx) assignNetworks(u *nodeUsage, nets []*structs.NetworkResource, hostIP string, picked *[]int) ([]*structs.NetworkResource, []structs.AllocatedPortMapping, bool) {
	out := make([]*structs.NetworkResource, 0, len(nets))
	var ports []structs.AllocatedPortMapping
	for _, n := range nets {
		if n == nil {
			continue
		}
		c := *n
		if n.Mode != structs.NetworkModeNone {
			c.ReservedPorts = append([]structs.Port(nil), n.ReservedPorts...)
			c.DynamicPorts = append([]structs.Port(nil), n.DynamicPorts...)
			for _, p := range c.ReservedPorts {
				ports = append(ports, portMapping(p, hostIP))
			}
			for i := range c.DynamicPorts {
				v, ok := s.pickDynamicPort(u, *picked)
				if !ok {
					return nil, nil, false
				}
				*picked = append(*picked, v)
				c.DynamicPorts[i].Value = v
				if c.DynamicPorts[i].To == -1 {
					c.DynamicPorts[i].To = v
				}
				ports = append(ports, portMapping(c.DynamicPorts[i], hostIP))
			}
		}
		if c.IP == "" {
			c.IP = hostIP
		}
		out = append(out, &c)
	}
	return out, ports, true
}

func portMapping(p structs.Port, hostIP string) structs.AllocatedPortMapping {
	return structs.AllocatedPortMapping{Label: p.Label, Value: p.Value, To: p.To, HostIP: hostIP}
}

// pickDynamicPort picks a free host port from the node's dynamic range:
// a few random tries, then a scan.
func (s *schedCtx) pickDynamicPort(u *nodeUsage, picked []int) (int, bool) {
	lo, hi := u.dynamicRange()
	if hi < lo {
		return 0, false
	}
	free := func(p int) bool { return !u.portUsed(p) && !containsInt(picked, p) }
	span := hi - lo + 1
	for range 20 {
		p := lo + s.rng.IntN(span)
		if free(p) {
			return p, true
		}
	}
	start := s.rng.IntN(span)
	for i := range span {
		p := lo + (start+i)%span
		if free(p) {
			return p, true
		}
	}
	return 0, false
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// placeOne selects a node for the group and adds the placement to the
// plan. It returns the allocation, or nil and the metric explaining why
// nothing fits.
func (s *schedCtx) placeOne(ask *tgAsk, name string, prev *structs.Allocation, opts placeOpts) (*structs.Allocation, *structs.AllocMetric) {
	c, metric := s.selectNode(ask, opts)
	if c == nil {
		return nil, metric
	}
	return s.placeOn(ask, c, name, prev, metric)
}

// placeOn places the group on a chosen candidate, evicting what the
// candidate needs preempted.
func (s *schedCtx) placeOn(ask *tgAsk, c *candidate, name string, prev *structs.Allocation, metric *structs.AllocMetric) (*structs.Allocation, *structs.AllocMetric) {
	var pending []*structs.Allocation
	if len(c.preempt) > 0 {
		// Take the evicted allocations' resources off the node first so
		// that their ports and cores can be reused.
		for _, e := range c.preempt {
			c.u.remove(e, s.job.ID, s.job.Namespace)
		}
		pending = c.preempt
		if dim := c.u.fit(ask); dim != "" {
			for _, e := range pending {
				c.u.add(e, s.job.ID, s.job.Namespace)
			}
			incr(&metric.DimensionExhausted, dim)
			return nil, metric
		}
	}
	a := s.newAlloc(ask, c, name, prev, metric)
	if a == nil {
		for _, e := range pending {
			c.u.add(e, s.job.ID, s.job.Namespace)
		}
		metric.NodesExhausted++
		incr(&metric.DimensionExhausted, "network: port selection failed")
		return nil, metric
	}
	if len(pending) > 0 {
		for _, e := range pending {
			c.u.add(e, s.job.ID, s.job.Namespace) // release removes it again
		}
		s.applyPreemption(pending, a)
	}
	s.place(a, c.node)
	return a, metric
}
