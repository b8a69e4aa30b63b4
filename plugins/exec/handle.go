package exec

import (
	"encoding/json"
	"fmt"
)

// handleVersion is the layout version of handleState, in TaskHandle.Version.
const handleVersion = 1

// handleState is TaskHandle.State: enough for a later plugin process to
// find the task again and to tell which driver owns it.
type handleState struct {
	// Kind is NameRawExec or NameExec.
	Kind string `json:"kind"`
	// PID is the task's process (raw_exec: also its process group id).
	PID int `json:"pid,omitempty"`
	// StartTime is field 22 of /proc/PID/stat when the task started, so
	// recovery never attaches to an unrelated process that reused the pid.
	StartTime uint64 `json:"start_time,omitempty"`
	// Cgroup names a raw_exec task's cgroup (see rawCgroup), if it got one.
	Cgroup string `json:"cgroup,omitempty"`
	// ContainerID is the containerd container of an exec task.
	ContainerID string `json:"container_id,omitempty"`
}

func encodeHandleState(s handleState) (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode handle state: %w", err)
	}
	return b, nil
}

func decodeHandleState(raw json.RawMessage) (*handleState, error) {
	var s handleState
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode handle state: %w", err)
	}
	return &s, nil
}
