package allocrunner

import "github.com/berth-dev/berth/structs"

// clientStatus aggregates task states into the allocation's client status
// as Nomad does: any failed task fails the allocation; otherwise running
// while any task runs, pending while any waits, complete once all are dead.
func clientStatus(states map[string]*structs.TaskState) (status, description string) {
	var failed, running, pending, dead bool
	for _, st := range states {
		switch st.State {
		case TaskStateRunning:
			running = true
		case TaskStatePending:
			pending = true
		case TaskStateDead:
			if st.Failed {
				failed = true
			} else {
				dead = true
			}
		}
	}
	switch {
	case failed:
		return structs.AllocClientStatusFailed, "Failed tasks"
	case running:
		return structs.AllocClientStatusRunning, "Tasks are running"
	case pending:
		return structs.AllocClientStatusPending, "No tasks have started"
	case dead:
		return structs.AllocClientStatusComplete, "All tasks have completed"
	}
	return structs.AllocClientStatusPending, "No tasks have started"
}
