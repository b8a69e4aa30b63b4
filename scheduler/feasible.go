package scheduler

import (
	"strconv"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// Reasons a node is filtered, as they appear in ConstraintFiltered.
const (
	filterMissingDrivers = "missing drivers"
	filterMissingDevices = "missing devices"
	filterDistinctHosts  = "distinct_hosts"
	// filterOutOfScope marks nodes outside the job's pool or datacenters:
	// they are skipped without being counted, as Nomad does.
	filterOutOfScope = "\x00scope"
)

// staticPort is a port the group asks for on a fixed host port.
type staticPort struct {
	Label string
	Value int
}

// taskAsk is what one task asks for.
type taskAsk struct {
	name     string
	cpu      int64
	mem      int64
	memMax   int64
	cores    int
	networks []*structs.NetworkResource
	devices  []*structs.RequestedDevice
}

// distinctProp is a distinct_property constraint.
type distinctProp struct {
	c       *structs.Constraint
	tgLevel bool
	limit   int
}

// tgAsk is everything about a task group the scheduler needs per node:
// resources, ports, the constraints split into class-cacheable and
// escaped ones, affinities and spreads, and the per-class caches.
type tgAsk struct {
	tg *structs.TaskGroup

	cpu, mem, disk int64
	cores          int
	tasks          []taskAsk

	networks     []*structs.NetworkResource
	staticPorts  []staticPort
	dynamicCount int
	hasPorts     bool
	devices      []*structs.RequestedDevice

	drivers          []string
	classConstraints []*structs.Constraint
	escConstraints   []*structs.Constraint
	escaped          bool

	distinctHostsJob bool
	distinctHostsTG  bool
	distinctProps    []distinctProp

	affinities        []*structs.Affinity
	affinityEscaped   bool
	affinityWeightSum float64
	spreads           []*structs.Spread

	// feasible caches, per computed class, "" for a feasible class or the
	// reason it is not.
	feasible map[string]string
	affinity map[string]float64
}

func newTGAsk(job *structs.Job, tg *structs.TaskGroup) *tgAsk {
	a := &tgAsk{tg: tg, feasible: map[string]string{}}
	if tg.EphemeralDisk != nil {
		a.disk = int64(tg.EphemeralDisk.SizeMB)
	} else {
		a.disk = structs.DefaultEphemeralDiskSizeMB
	}
	addCons := func(cs []*structs.Constraint, tgLevel bool) {
		for _, c := range cs {
			if c == nil {
				continue
			}
			switch c.Operand {
			case structs.ConstraintDistinctHosts:
				if c.RTarget == "" || c.RTarget == "true" {
					if tgLevel {
						a.distinctHostsTG = true
					} else {
						a.distinctHostsJob = true
					}
				}
			case structs.ConstraintDistinctProperty:
				limit := 1
				if c.RTarget != "" {
					if n, err := strconv.Atoi(c.RTarget); err == nil && n > 0 {
						limit = n
					}
				}
				a.distinctProps = append(a.distinctProps, distinctProp{c: c, tgLevel: tgLevel, limit: limit})
			default:
				if targetEscapes(c.LTarget) || targetEscapes(c.RTarget) {
					a.escConstraints = append(a.escConstraints, c)
					a.escaped = true
				} else {
					a.classConstraints = append(a.classConstraints, c)
				}
			}
		}
	}
	addCons(job.Constraints, false)
	addCons(tg.Constraints, true)
	addAff := func(as []*structs.Affinity) {
		for _, af := range as {
			if af == nil {
				continue
			}
			a.affinities = append(a.affinities, af)
			w := float64(af.Weight)
			if w < 0 {
				w = -w
			}
			a.affinityWeightSum += w
			if targetEscapes(af.LTarget) || targetEscapes(af.RTarget) {
				a.affinityEscaped = true
			}
		}
	}
	addAff(job.Affinities)
	addAff(tg.Affinities)
	a.spreads = append(append([]*structs.Spread(nil), job.Spreads...), tg.Spreads...)

	addNets := func(nets []*structs.NetworkResource) {
		for _, n := range nets {
			if n == nil || n.Mode == structs.NetworkModeNone {
				continue
			}
			for _, p := range n.ReservedPorts {
				a.staticPorts = append(a.staticPorts, staticPort{Label: p.Label, Value: p.Value})
			}
			a.dynamicCount += len(n.DynamicPorts)
		}
	}
	a.networks = tg.Networks
	addNets(tg.Networks)
	for _, t := range tg.Tasks {
		if t == nil {
			continue
		}
		ta := taskAsk{name: t.Name}
		r := t.Resources
		if r == nil {
			r = structs.DefaultResources()
		}
		ta.cpu, ta.mem, ta.cores = int64(r.CPU), int64(r.MemoryMB), r.Cores
		if r.Cores > 0 {
			ta.cpu = 0
		}
		ta.memMax = int64(r.MemoryMaxMB)
		ta.networks = r.Networks
		ta.devices = r.Devices
		addNets(r.Networks)
		a.devices = append(a.devices, r.Devices...)
		a.cpu += ta.cpu
		a.mem += ta.mem
		a.cores += ta.cores
		a.disk += int64(r.DiskMB)
		a.tasks = append(a.tasks, ta)
		if t.Driver != "" && !contains(a.drivers, t.Driver) {
			a.drivers = append(a.drivers, t.Driver)
		}
		addCons(t.Constraints, true)
		addAff(t.Affinities)
	}
	a.hasPorts = len(a.staticPorts) > 0 || a.dynamicCount > 0
	return a
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// nodeReady reports whether a node can take new placements at all.
func nodeReady(n *structs.Node) bool {
	return n.Status == structs.NodeStatusReady && !n.Drain &&
		(n.SchedulingEligibility == "" || n.SchedulingEligibility == structs.NodeSchedulingEligible)
}

// inScope reports whether the node is in the job's node pool and
// datacenters.
func inScope(job *structs.Job, n *structs.Node) bool {
	pool := job.NodePool
	if pool == "" {
		pool = structs.DefaultNodePool
	}
	npool := n.NodePool
	if npool == "" {
		npool = structs.DefaultNodePool
	}
	if pool != "all" && pool != npool {
		return false
	}
	if len(job.Datacenters) == 0 {
		return true
	}
	for _, dc := range job.Datacenters {
		if globMatch(dc, n.Datacenter) {
			return true
		}
	}
	return false
}

// driverOK reports whether the node runs the driver and it is healthy.
func driverOK(n *structs.Node, driver string) bool {
	if d, ok := n.Drivers[driver]; ok && d != nil {
		return d.Detected && d.Healthy
	}
	return n.Attributes["driver."+driver] == "1"
}

// classFeasible evaluates everything about a node that its computed class
// determines: scope, drivers, devices and class constraints.
func (s *schedCtx) classFeasible(ask *tgAsk, n *structs.Node) string {
	if !inScope(s.job, n) {
		return filterOutOfScope
	}
	for _, d := range ask.drivers {
		if !driverOK(n, d) {
			return filterMissingDrivers
		}
	}
	if len(ask.devices) > 0 && !nodeHasDevices(n, ask.devices) {
		return filterMissingDevices
	}
	for _, c := range ask.classConstraints {
		if !s.m.meetsConstraint(c, n) {
			return c.String()
		}
	}
	return ""
}

// feasible reports whether a ready node may run the group, without regard
// to resources: "" or the reason it may not.
func (s *schedCtx) feasible(ask *tgAsk, n *structs.Node) string {
	class := s.nodeClass(n)
	reason, ok := ask.feasible[class]
	if !ok {
		reason = s.classFeasible(ask, n)
		ask.feasible[class] = reason
	}
	if reason != "" {
		return reason
	}
	for _, c := range ask.escConstraints {
		if !s.m.meetsConstraint(c, n) {
			return c.String()
		}
	}
	if ask.distinctHostsJob || ask.distinctHostsTG || len(ask.distinctProps) > 0 {
		if r := s.distinctFeasible(ask, n); r != "" {
			return r
		}
	}
	return ""
}

// distinctFeasible checks distinct_hosts and distinct_property against
// what runs and is planned.
func (s *schedCtx) distinctFeasible(ask *tgAsk, n *structs.Node) string {
	if ask.distinctHostsJob || ask.distinctHostsTG {
		u := s.usage(n)
		if ask.distinctHostsJob && u.jobCount > 0 {
			return filterDistinctHosts
		}
		if ask.distinctHostsTG && u.tgCount[ask.tg.Name] > 0 {
			return filterDistinctHosts
		}
	}
	for _, dp := range ask.distinctProps {
		val, ok := resolveTarget(dp.c.LTarget, n)
		if !ok {
			return dp.c.String()
		}
		tg := ""
		if dp.tgLevel {
			tg = ask.tg.Name
		}
		if s.propertyCount(dp.c.LTarget, tg, val) >= dp.limit {
			return dp.c.String()
		}
	}
	return ""
}

// nodeClass returns the node's computed class. A node without one (the
// server did not compute it) gets a key of its own, so its feasibility is
// still cached for the evaluation but not shared with other nodes.
func (s *schedCtx) nodeClass(n *structs.Node) string {
	if n.ComputedClass != "" {
		return n.ComputedClass
	}
	return unclassedPrefix + n.ID
}

// unclassedPrefix marks per-node cache keys of nodes without a class.
const unclassedPrefix = "\x00node:"

// deviceMatches reports whether a requested device name ("type",
// "vendor/type" or "vendor/type/model") matches a node device
// "vendor/type/model".
func deviceMatches(req, have string) bool {
	hp := strings.Split(have, "/")
	if len(hp) != 3 {
		return req == have
	}
	switch rp := strings.Split(req, "/"); len(rp) {
	case 1:
		return rp[0] == hp[1]
	case 2:
		return rp[0] == hp[0] && rp[1] == hp[1]
	case 3:
		return req == have
	}
	return false
}
