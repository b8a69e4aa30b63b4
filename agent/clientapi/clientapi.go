// Package clientapi is the agent's HTTP API for per-allocation operations:
// logs, exec, stats, signal and restart, on Nomad's paths and in Nomad's
// wire shapes, so that servers can proxy them unchanged and Nomad's own
// API client can talk to them.
package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"github.com/berth-dev/berth/plugins/driver"
)

// Allocs is what the handler needs of the agent: access to the
// allocations running on this node.
type Allocs interface {
	// LogDir returns the allocation's log directory; the error wraps
	// ErrUnknownAlloc when the allocation is not on this node.
	LogDir(allocID string) (string, error)
	// TaskNames lists the allocation's tasks.
	TaskNames(allocID string) ([]string, error)
	// Exec runs a command in a task and returns its exit code.
	Exec(ctx context.Context, allocID, task string, opts *driver.ExecOptions) (int, error)
	// Stats samples the usage of every running task of the allocation.
	Stats(ctx context.Context, allocID string) (map[string]*driver.TaskResourceUsage, error)
	// Signal sends signal to task ("" task: every task).
	Signal(ctx context.Context, allocID, task, signal string) error
	// Restart restarts task, or every task with allTasks ("" task and not
	// allTasks: the running tasks, as Nomad does).
	Restart(ctx context.Context, allocID, task string, allTasks bool) error
}

// ErrUnknownAlloc is wrapped by Allocs errors for an allocation this node
// does not run; the API answers 404.
var ErrUnknownAlloc = errors.New("allocation not found on this node")

// ErrUnknownTask is wrapped by Allocs errors for a task the allocation
// does not have; the API answers 404.
var ErrUnknownTask = errors.New("task not found in allocation")

// ErrBadRequest is wrapped by Allocs errors caused by the request (a bad
// signal name…); the API answers 400.
var ErrBadRequest = errors.New("bad request")

// Handler serves the agent's client API on Nomad's paths.
func Handler(a Allocs, logger *slog.Logger, opts ...Option) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{allocs: a, logger: logger.With("component", "client_api")}
	for _, opt := range opts {
		opt(h)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/client/stats", h.hostStatsHandler)
	mux.HandleFunc("GET /v1/client/fs/logs/{alloc}", h.logs)
	mux.HandleFunc("GET /v1/client/allocation/{alloc}/exec", h.exec)
	mux.HandleFunc("GET /v1/client/allocation/{alloc}/stats", h.stats)
	mux.HandleFunc("PUT /v1/client/allocation/{alloc}/signal", h.signal)
	mux.HandleFunc("POST /v1/client/allocation/{alloc}/signal", h.signal)
	mux.HandleFunc("PUT /v1/client/allocation/{alloc}/restart", h.restart)
	mux.HandleFunc("POST /v1/client/allocation/{alloc}/restart", h.restart)
	return mux
}

type handler struct {
	allocs Allocs
	logger *slog.Logger
	// hostStats and nodeID are set by WithHostStats.
	hostStats HostStats
	nodeID    string
}

// httpError is an error with the status it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to an HTTP status: 404 for unknown allocs and
// tasks, 400 for bad input, 500 only for the agent's own failures.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, ErrUnknownAlloc), errors.Is(err, ErrUnknownTask), errors.Is(err, driver.ErrTaskNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers err as Nomad does: a status and the message as text.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code >= 500 {
		h.logger.Warn("client api request failed", "path", r.URL.Path, "error", err)
	}
	http.Error(w, err.Error(), code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// resolveTask returns the task a request is about: the given one, which
// must exist, or the only task of the allocation.
func (h *handler) resolveTask(allocID, task string) (string, error) {
	names, err := h.allocs.TaskNames(allocID)
	if err != nil {
		return "", err
	}
	if task == "" {
		if len(names) == 1 {
			return names[0], nil
		}
		return "", badRequest("must provide task name: allocation has %d tasks", len(names))
	}
	if !slices.Contains(names, task) {
		return "", fmt.Errorf("task %q: %w", task, ErrUnknownTask)
	}
	return task, nil
}

// Request bodies, as Nomad's api.AllocSignalRequest and
// api.AllocationRestartRequest.
type signalRequest struct {
	Task   string
	Signal string
}

type restartRequest struct {
	TaskName string
	AllTasks bool
}

const maxBody = 1 << 20

func decodeBody(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("invalid request body: %v", err)
	}
	return nil
}

func (h *handler) signal(w http.ResponseWriter, r *http.Request) {
	allocID := r.PathValue("alloc")
	var req signalRequest
	if err := decodeBody(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.Task != "" {
		if _, err := h.resolveTask(allocID, req.Task); err != nil {
			h.writeError(w, r, err)
			return
		}
	} else if _, err := h.allocs.TaskNames(allocID); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.allocs.Signal(r.Context(), allocID, req.Task, req.Signal); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (h *handler) restart(w http.ResponseWriter, r *http.Request) {
	allocID := r.PathValue("alloc")
	var req restartRequest
	if err := decodeBody(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.TaskName != "" && req.AllTasks {
		h.writeError(w, r, badRequest("task name and all tasks cannot both be set"))
		return
	}
	if req.TaskName != "" {
		if _, err := h.resolveTask(allocID, req.TaskName); err != nil {
			h.writeError(w, r, err)
			return
		}
	} else if _, err := h.allocs.TaskNames(allocID); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.allocs.Restart(r.Context(), allocID, req.TaskName, req.AllTasks); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, struct{}{})
}
