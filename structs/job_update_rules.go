package structs

import "reflect"

// The one statement of which job changes replace allocations
// (create/destroy update) and which update them in place. The scheduler's
// reconciler and the job plan diff's annotations both use it, so what
// `job plan` announces is what the scheduler does.

// TaskGroupUpdateDestructive reports whether moving an allocation of a
// group from version old to cur needs the allocation replaced. Count,
// meta, the update, reschedule, restart and migrate blocks, services,
// scaling, constraints and affinities change in place (constraints are
// re-checked against the node separately); anything that changes what runs
// or the resources it holds is destructive.
func TaskGroupUpdateDestructive(old, cur *TaskGroup) bool {
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
		if TaskUpdateDestructive(ot, ct) {
			return true
		}
	}
	return false
}

// TaskUpdateDestructive reports whether the change of one task from old
// to cur replaces its allocation: anything but its in-place fields (meta,
// services, constraints, affinities, scaling, restart policy, kill
// timeout, shutdown delay, log config).
func TaskUpdateDestructive(old, cur *Task) bool {
	if old == nil || cur == nil {
		return true
	}
	return !reflect.DeepEqual(inPlaceCleared(old), inPlaceCleared(cur))
}

// inPlaceCleared is the task with its in-place fields cleared.
func inPlaceCleared(t *Task) Task {
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
