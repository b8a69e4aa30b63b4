package allocrunner

import (
	"time"

	"github.com/berth-dev/berth/structs"
)

// Task states, as Nomad's.
const (
	TaskStatePending = "pending"
	TaskStateRunning = "running"
	TaskStateDead    = "dead"
)

// Task event types, with Nomad's names so that Nomad's CLI and UI show
// them as they would Nomad's own.
const (
	EventReceived          = "Received"
	EventSetup             = "Task Setup"
	EventSetupFailure      = "Setup Failure"
	EventDownloading       = "Downloading Artifacts"
	EventArtifactFailed    = "Failed Artifact Download"
	EventDriver            = "Driver"
	EventDriverFailure     = "Driver Failure"
	EventStarted           = "Started"
	EventTerminated        = "Terminated"
	EventRestarting        = "Restarting"
	EventNotRestarting     = "Not Restarting"
	EventRestartSignal     = "Restart Signaled"
	EventSignaling         = "Signaling"
	EventKilling           = "Killing"
	EventKilled            = "Killed"
	EventSiblingFailed     = "Sibling Task Failed"
	EventLeaderDead        = "Leader Task Dead"
	EventMainTasksDone     = "Main Tasks Completed"
	EventTemplateRendered  = "Template Rendered"
	EventTaskHookFailed    = "Task hook failed"
	EventFailedValidation  = "Failed Validation"
	EventPluginUnavailable = "Plugin Unavailable"
)

// maxTaskEvents bounds the events kept per task, as Nomad does (10).
const maxTaskEvents = 10

func newEvent(typ string, now time.Time) *structs.TaskEvent {
	return &structs.TaskEvent{Type: typ, Time: now.UnixNano(), Details: map[string]string{}}
}

// eventBuilder is a fluent helper for events with a message.
type eventBuilder struct{ ev *structs.TaskEvent }

func event(typ string, now time.Time) *eventBuilder {
	return &eventBuilder{ev: newEvent(typ, now)}
}

func (b *eventBuilder) build() *structs.TaskEvent { return b.ev }

func (b *eventBuilder) msg(m string) *eventBuilder {
	b.ev.DisplayMessage = m
	b.ev.Message = m
	return b
}

func (b *eventBuilder) detail(k, v string) *eventBuilder {
	b.ev.Details[k] = v
	return b
}

func (b *eventBuilder) failsTask() *eventBuilder {
	b.ev.FailsTask = true
	b.ev.Details["fails_task"] = "true"
	return b
}

// appendEvent adds ev to st, keeping the newest maxTaskEvents.
func appendEvent(st *structs.TaskState, ev *structs.TaskEvent) {
	st.Events = append(st.Events, ev)
	if n := len(st.Events); n > maxTaskEvents {
		st.Events = append([]*structs.TaskEvent(nil), st.Events[n-maxTaskEvents:]...)
	}
}

// copyTaskState returns a deep copy (events are immutable once added).
func copyTaskState(st *structs.TaskState) *structs.TaskState {
	if st == nil {
		return nil
	}
	c := *st
	c.Events = append([]*structs.TaskEvent(nil), st.Events...)
	return &c
}
