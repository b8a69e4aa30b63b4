package scheduler

import (
	"github.com/berth-dev/berth/structs"
)

// destructiveChange reports whether moving an allocation of group tg from
// job version old to job version cur needs the allocation replaced, rather
// than updated in place: structs.TaskGroupUpdateDestructive, the rule the
// job plan diff annotates with too.
func destructiveChange(old, cur *structs.TaskGroup) bool {
	return structs.TaskGroupUpdateDestructive(old, cur)
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
