package api

import (
	"net/http"
)

// AllocStopResponse answers PUT /v1/allocation/:id/stop.
type AllocStopResponse struct {
	// EvalID is the evaluation that stops and replaces the allocation.
	EvalID string
	Index  uint64
}

// Stop stops an allocation; its job's scheduler places a replacement.
func (a *Allocations) Stop(allocID string, w *WriteOptions) (*AllocStopResponse, *WriteMeta, error) {
	var out AllocStopResponse
	wm, err := a.c.write(http.MethodPut, "/v1/allocation/"+pathEscape(allocID)+"/stop", nil, struct{}{}, &out, w)
	if err != nil {
		return nil, nil, err
	}
	return &out, wm, nil
}

// AllocSignalRequest is the body of a signal: empty Task means all tasks.
type AllocSignalRequest struct {
	Task   string
	Signal string
}

// AllocRestartRequest is the body of a restart: empty TaskName and
// AllTasks false restart the running tasks.
type AllocRestartRequest struct {
	TaskName string
	AllTasks bool
}

// Signal sends a signal (e.g. "SIGHUP") to a task of the allocation, or to
// all its tasks when task is empty. Served by the agent, through a server.
func (a *Allocations) Signal(allocID, task, signal string, w *WriteOptions) error {
	_, err := a.c.write(http.MethodPut, "/v1/client/allocation/"+pathEscape(allocID)+"/signal", nil,
		&AllocSignalRequest{Task: task, Signal: signal}, nil, w)
	return err
}

// Restart restarts a task of the allocation in place, or its running tasks
// when task is empty (all tasks, prestart ones included, with allTasks).
func (a *Allocations) Restart(allocID, task string, allTasks bool, w *WriteOptions) error {
	_, err := a.c.write(http.MethodPut, "/v1/client/allocation/"+pathEscape(allocID)+"/restart", nil,
		&AllocRestartRequest{TaskName: task, AllTasks: allTasks}, nil, w)
	return err
}

// AllocResourceUsage is an allocation's resource usage (Nomad's shape):
// the sum over its tasks, and each task's own.
type AllocResourceUsage struct {
	ResourceUsage *ResourceUsage
	Tasks         map[string]*TaskResourceUsage
	Timestamp     int64
}

// TaskResourceUsage is one task's usage and that of its processes.
type TaskResourceUsage struct {
	ResourceUsage *ResourceUsage
	Timestamp     int64
	Pids          map[string]*ResourceUsage
}

// ResourceUsage is memory and CPU usage.
type ResourceUsage struct {
	MemoryStats *MemoryStats
	CpuStats    *CpuStats
	DeviceStats []any
}

// MemoryStats is memory in bytes.
type MemoryStats struct {
	RSS            uint64
	Cache          uint64
	Swap           uint64
	Usage          uint64
	MaxUsage       uint64
	KernelUsage    uint64
	KernelMaxUsage uint64
	Measured       []string
}

// CpuStats is CPU time and percentage.
type CpuStats struct {
	SystemMode       float64
	UserMode         float64
	TotalTicks       float64
	ThrottledPeriods uint64
	ThrottledTime    uint64
	Percent          float64
	Measured         []string
}

// Stats returns the allocation's resource usage, as its agent measures it.
func (a *Allocations) Stats(allocID string, q *QueryOptions) (*AllocResourceUsage, error) {
	var out AllocResourceUsage
	if _, err := a.c.query("/v1/client/allocation/"+pathEscape(allocID)+"/stats", &out, q); err != nil {
		return nil, err
	}
	return &out, nil
}
