package scheduler

import (
	"reflect"

	"github.com/berth-dev/berth/structs"
)

// destructiveChange reports whether moving an allocation of group tg from
// job version old to job version cur needs the allocation replaced, rather
// than updated in place. Count, meta, the update, reschedule, restart and
// migrate blocks, services, scaling, constraints and affinities change in
// place (constraints are re-checked against the node separately);
// anything that changes what runs or the resources it holds is
// destructive.
func destructiveChange(old, cur *structs.TaskGroup) bool {
	if old == nil || cur == nil {
		return true
	}
	if len(old.Tasks) != len(cur.Tasks) {
		return true
	}
	if !reflect.DeepEqual(old.Networks, cur.Networks) ||
		!reflect.DeepEqual(old.EphemeralDisk, cur.EphemeralDisk) ||
		!reflect.DeepEqual(old.Volumes, cur.Volumes) {
		return true
	}
	for i, ot := range old.Tasks {
		ct := cur.LookupTask(ot.Name)
		if ct == nil || ct.Name != cur.Tasks[i].Name {
			return true
		}
		if !reflect.DeepEqual(comparableTask(ot), comparableTask(ct)) {
			return true
		}
	}
	return false
}

// comparableTask is the task with its in-place fields cleared.
func comparableTask(t *structs.Task) structs.Task {
	c := *t
	c.Meta = nil
	c.Services = nil
	c.Constraints = nil
	c.Affinities = nil
	c.ScalingPolicies = nil
	c.RestartPolicy = nil
	c.KillTimeout = 0
	c.ShutdownDelay = 0
	c.LogConfig = nil
	return c
}

// updateCache remembers, per old job version and group, whether updating
// to the current job is destructive.
type updateCache map[updateKey]bool

type updateKey struct {
	version   uint64
	modifyIdx uint64
	group     string
}

func (c updateCache) destructive(old, cur *structs.Job, tg string) bool {
	k := updateKey{old.Version, old.JobModifyIndex, tg}
	if v, ok := c[k]; ok {
		return v
	}
	v := destructiveChange(old.LookupTaskGroup(tg), cur.LookupTaskGroup(tg))
	c[k] = v
	return v
}

// jobChanged reports whether the allocation runs an older job version.
func jobChanged(a *structs.Allocation, job *structs.Job) bool {
	if a.Job == nil {
		return false
	}
	return a.Job.Version != job.Version || a.Job.JobModifyIndex != job.JobModifyIndex
}
