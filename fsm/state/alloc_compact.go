package state

import (
	"reflect"
	"slices"
	"strconv"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// allocCompactor makes the allocations one plan places share what they hold
// identical, so that 100,000 allocations do not cost 100,000 copies of the
// same strings, placement metrics and resource blocks once decoded from the
// Raft log. It only ever depends on the entry being applied and on the
// state, so every server ends with the same (and equally small) state.
//
// What is shared must never be mutated in place: the state store's objects
// are immutable, writers copy first.
type allocCompactor struct {
	txn *memdb.Txn
	job *structs.Job
	// metrics is the placement metric of the first new allocation of each
	// task group: allocations placed by one plan for one group show that
	// one (Nomad's `alloc status -verbose` shows the same kind of summary).
	metrics   map[string]*structs.AllocMetric
	resources map[string]*structs.AllocatedResources
	strs      map[string]string
	key       []byte
}

func newAllocCompactor(txn *memdb.Txn, job *structs.Job) *allocCompactor {
	return &allocCompactor{txn: txn, job: job, metrics: map[string]*structs.AllocMetric{}, resources: map[string]*structs.AllocatedResources{}, strs: map[string]string{}}
}

// compactNew shares the fields of a new placement c.
func (ac *allocCompactor) compactNew(c *structs.Allocation) {
	ac.compactStrings(c)
	if c.Metrics != nil {
		if m, ok := ac.metrics[c.TaskGroup]; ok {
			c.Metrics = m
		} else {
			ac.metrics[c.TaskGroup] = c.Metrics
		}
	}
	c.AllocatedResources = ac.shareResources(c.AllocatedResources)
}

// compactStrings points the repeated strings of c at one copy: the node's
// ID and name at the node record's, the job's at the plan's job, the rest
// at the first occurrence in this plan.
func (ac *allocCompactor) compactStrings(c *structs.Allocation) {
	if raw, err := ac.txn.First(TableNodes, "id", c.NodeID); err == nil && raw != nil {
		n := raw.(*structs.Node)
		c.NodeID = n.ID
		if c.NodeName == n.Name {
			c.NodeName = n.Name
		}
	}
	if j := ac.job; j != nil {
		if c.JobID == j.ID {
			c.JobID = j.ID
		}
		if c.Namespace == j.Namespace {
			c.Namespace = j.Namespace
		}
		for _, tg := range j.TaskGroups {
			if tg != nil && tg.Name == c.TaskGroup {
				c.TaskGroup = tg.Name
				break
			}
		}
	}
	c.Namespace = ac.intern(c.Namespace)
	c.EvalID = ac.intern(c.EvalID)
	c.JobID = ac.intern(c.JobID)
	c.TaskGroup = ac.intern(c.TaskGroup)
	c.NodeName = ac.intern(c.NodeName)
	c.DesiredStatus = internStatus(c.DesiredStatus)
	c.ClientStatus = internStatus(c.ClientStatus)
	c.DesiredDescription = ac.intern(c.DesiredDescription)
	c.ClientDescription = ac.intern(c.ClientDescription)
}

func (ac *allocCompactor) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := ac.strs[s]; ok {
		return v
	}
	ac.strs[s] = s
	return s
}

// internStatus returns the package constant equal to s, so statuses cost
// nothing per allocation.
func internStatus(s string) string {
	switch s {
	case structs.AllocDesiredStatusRun:
		return structs.AllocDesiredStatusRun
	case structs.AllocDesiredStatusStop:
		return structs.AllocDesiredStatusStop
	case structs.AllocDesiredStatusEvict:
		return structs.AllocDesiredStatusEvict
	case structs.AllocClientStatusPending:
		return structs.AllocClientStatusPending
	case structs.AllocClientStatusRunning:
		return structs.AllocClientStatusRunning
	case structs.AllocClientStatusComplete:
		return structs.AllocClientStatusComplete
	case structs.AllocClientStatusFailed:
		return structs.AllocClientStatusFailed
	case structs.AllocClientStatusLost:
		return structs.AllocClientStatusLost
	case structs.AllocClientStatusUnknown:
		return structs.AllocClientStatusUnknown
	}
	return s
}

// shareResources returns an identical resource block already seen in this
// plan, or r. Only blocks without ports, networks, cores or devices are
// shared: those are what the scheduler chose per node, and differ.
func (ac *allocCompactor) shareResources(r *structs.AllocatedResources) *structs.AllocatedResources {
	key, ok := resourcesKey(ac.key[:0], r)
	ac.key = key
	if !ok {
		return r
	}
	if v, ok := ac.resources[string(key)]; ok {
		return v
	}
	ac.resources[string(key)] = r
	return r
}

// resourcesKey appends to buf an encoding of every field of r, or reports
// false when r holds per-placement parts (networks, ports, cores,
// devices). TestResourcesKeyCoversFields fails when a field is added to
// these structs, so that the key is extended with it.
func resourcesKey(buf []byte, r *structs.AllocatedResources) ([]byte, bool) {
	if r == nil || len(r.Shared.Networks) > 0 || len(r.Shared.Ports) > 0 {
		return buf, false
	}
	names := make([]string, 0, len(r.Tasks))
	for name, t := range r.Tasks {
		if t == nil || len(t.Networks) > 0 || len(t.Devices) > 0 || len(t.Cpu.ReservedCores) > 0 {
			return buf, false
		}
		names = append(names, name)
	}
	slices.Sort(names)
	buf = strconv.AppendInt(buf, r.Shared.DiskMB, 10)
	for _, name := range names {
		t := r.Tasks[name]
		buf = append(buf, 0)
		buf = strconv.AppendQuote(buf, name)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, t.Cpu.CpuShares, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, t.Memory.MemoryMB, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, t.Memory.MemoryMaxMB, 10)
	}
	return buf, true
}

// restoreCompactor does for a snapshot being restored what allocCompactor
// does for a plan: a snapshot carries every allocation with its own copy
// of its job, metric and resources, which restored one by one would cost
// far more than the state that was persisted. Only values that are equal
// (reflect.DeepEqual) are shared, so the restored state is the same.
type restoreCompactor struct {
	ac      *allocCompactor
	jobs    map[jobVersionKey]*structs.Job
	metrics map[metricKey]*structs.AllocMetric
}

type jobVersionKey struct {
	ns, id                    string
	jobModifyIndex, modifyIdx uint64
}

type metricKey struct{ evalID, group string }

func newRestoreCompactor(txn *memdb.Txn) *restoreCompactor {
	return &restoreCompactor{ac: newAllocCompactor(txn, nil), jobs: map[jobVersionKey]*structs.Job{}, metrics: map[metricKey]*structs.AllocMetric{}}
}

func (rc *restoreCompactor) compact(a *structs.Allocation) {
	if j := a.Job; j != nil {
		k := jobVersionKey{j.Namespace, j.ID, j.JobModifyIndex, j.ModifyIndex}
		if shared, ok := rc.jobs[k]; ok {
			if reflect.DeepEqual(shared, j) {
				a.Job = shared
			}
		} else {
			// the jobs table (restored before the allocations) holds the
			// latest version, which most allocations run
			if raw, err := rc.ac.txn.First(TableJobs, "id", j.Namespace, j.ID); err == nil && raw != nil && reflect.DeepEqual(raw, j) {
				a.Job = raw.(*structs.Job)
			}
			rc.jobs[k] = a.Job
		}
	}
	rc.ac.job = a.Job
	rc.ac.compactStrings(a)
	if m := a.Metrics; m != nil {
		k := metricKey{a.EvalID, a.TaskGroup}
		if shared, ok := rc.metrics[k]; !ok {
			rc.metrics[k] = m
		} else if shared != m && reflect.DeepEqual(shared, m) {
			a.Metrics = shared
		}
	}
	a.AllocatedResources = rc.ac.shareResources(a.AllocatedResources)
}
