package scheduler

import "github.com/berth-dev/berth/structs"

// Migrations: the drainer (and `alloc stop`) mark allocations with
// DesiredTransition.Migrate; the scheduler stops each marked allocation
// and places its replacement on another eligible node. Which allocations
// are marked, and how many at once (the migrate block's max_parallel), is
// the drainer's decision, not the scheduler's.

const descMigrating = "alloc is being migrated"

// migrating reports whether a live allocation is to be stopped and
// replaced because it was marked to migrate.
func migrating(a *structs.Allocation) bool {
	return a.DesiredStatus == structs.AllocDesiredStatusRun && a.DesiredTransition.ShouldMigrate()
}

// systemDrainStop reports whether a system job's allocations on node n
// are to be stopped because the node drains: only once the drainer marked
// them (system allocations leave a draining node last), and never when
// the drain ignores system jobs.
func systemDrainStop(n *structs.Node, existing []*structs.Allocation) bool {
	if n == nil || !n.Drain {
		return false
	}
	if n.DrainStrategy != nil && n.DrainStrategy.IgnoreSystemJobs {
		return false
	}
	for _, a := range existing {
		if migrating(a) {
			return true
		}
	}
	return false
}
