// Package ctrtask is the containerd task plumbing shared by berth's
// containerd-based drivers ("containerd"/"docker" in plugins/containerd and
// "exec" in plugins/exec).
//
// Usage:
//
//	rt, err := ctrtask.Connect(ctx, pluginCfg.Containerd, logger) // once, in SetConfig
//	defer rt.Close()
//	h, err := rt.Start(ctx, taskCfg, ctrtask.CreateOptions{
//		Image:    img,              // or RootfsPath: "/host/dir" for a chroot-like rootfs
//		SpecOpts: driverSpecificOpts, // applied after CommonSpecOpts(taskCfg)
//	})
//	res, err := rt.Wait(ctx, taskCfg.ID)       // any number of concurrent callers
//	err = rt.Stop(ctx, taskCfg.ID, 5*time.Second, "SIGTERM")
//	err = rt.Destroy(ctx, taskCfg.ID, false)   // task, container and snapshot gone
//
// After a plugin restart, a new Runtime re-attaches with Recover(ctx, handle)
// and then serves Wait/Stop/... for that task as if it had started it.
//
// The container ID is the task ID with "/" replaced by "-" (ContainerID,
// which also folds characters containerd refuses). The cgroup is
// /<namespace>/<container ID> (containerd's default). An exit by signal N
// is reported as ExitCode 128+N and Signal N; OOMKilled is set from the
// shim's OOM event.
// Task stdout/stderr are connected to TaskConfig.StdoutPath/StderrPath: the
// containerd shim opens those FIFOs itself, so no goroutine of the plugin
// process copies task output, and output keeps flowing while the plugin is
// restarted. Every method taking a task ID returns an error wrapping
// driver.ErrTaskNotFound for an ID this Runtime does not track.
package ctrtask

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/berth-dev/berth/plugins/driver"
)

// DefaultSnapshotter is used when ContainerdConfig.Snapshotter is empty.
const DefaultSnapshotter = "overlayfs"

// HandleStateVersion is the TaskHandle.Version Start writes.
const HandleStateVersion = 1

// HandleState is the JSON kept in driver.TaskHandle.State by Start.
type HandleState struct {
	ContainerID string
	Image       string `json:",omitempty"`
	RootfsPath  string `json:",omitempty"`
	PID         uint32
	// ShimGroup is CreateOptions.ShimGroup, for the recovered task's deletes.
	ShimGroup string `json:",omitempty"`
}

// Runtime is a connection to containerd in one namespace plus the tasks
// started or recovered through it.
type Runtime struct {
	client      *containerd.Client
	namespace   string
	snapshotter string
	logger      *slog.Logger

	// ctx carries the namespace; cancelled by Close to end wait goroutines.
	ctx    context.Context
	cancel context.CancelFunc

	// starts bounds the container starts in flight (startLimit).
	starts chan struct{}
	// shimGroups serialize task creation and deletion within a shim group.
	groupMu    sync.Mutex
	shimGroups map[string]*shimGroupLock

	mu    sync.Mutex
	tasks map[string]*entry
	ooms  map[string]bool // container IDs that saw an OOM event
}

// startLimit is how many container starts a Runtime has in flight at
// once: 8 per CPU, between 8 and 64. Starting is CPU-bound work in
// containerd, its shims and runc (about 130 ms of CPU per container on
// the 2-core test machine); with 500 asked for at once, more in flight
// only makes each wait longer, fewer leaves CPU idle
// (BenchmarkContainerdFloorStudy: 16 and 32 in flight took the same time,
// 4 and 8 were 15–20% slower).
func startLimit() int { return min(max(8*runtime.NumCPU(), 8), 64) }

type shimGroupLock struct {
	mu   sync.Mutex
	refs int // holders and waiters; the entry goes at zero
}

// lockShimGroup serializes task creation and deletion in group ("" :
// no lock; see delete.go).
func (r *Runtime) lockShimGroup(group string) (unlock func()) {
	if group == "" {
		return func() {}
	}
	r.groupMu.Lock()
	if r.shimGroups == nil {
		r.shimGroups = map[string]*shimGroupLock{}
	}
	g := r.shimGroups[group]
	if g == nil {
		g = &shimGroupLock{}
		r.shimGroups[group] = g
	}
	g.refs++
	r.groupMu.Unlock()
	g.mu.Lock()
	return func() {
		g.mu.Unlock()
		r.groupMu.Lock()
		if g.refs--; g.refs == 0 {
			delete(r.shimGroups, group)
		}
		r.groupMu.Unlock()
	}
}

// acquireStart waits for a start slot (or ctx) and returns its release.
func (r *Runtime) acquireStart(ctx context.Context) (func(), error) {
	select {
	case r.starts <- struct{}{}:
		return func() { <-r.starts }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a start slot (%d in flight): %w", cap(r.starts), ctx.Err())
	}
}

// Connect dials containerd at cfg.Address and uses cfg.Namespace (default
// "berth") for everything.
func Connect(ctx context.Context, cfg *driver.ContainerdConfig, logger *slog.Logger) (*Runtime, error) {
	if cfg == nil || cfg.Address == "" {
		return nil, errors.New("ctrtask: containerd address not configured")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = "berth"
	}
	sn := cfg.Snapshotter
	if sn == "" {
		sn = DefaultSnapshotter
	}
	// Fail fast on a missing socket instead of waiting out the dial timeout.
	if fi, err := os.Stat(strings.TrimPrefix(cfg.Address, "unix://")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("connect containerd: no socket at %s", cfg.Address)
	}
	dialCtx, cancelDial := context.WithTimeout(ctx, 10*time.Second)
	defer cancelDial()
	client, err := containerd.New(cfg.Address,
		containerd.WithDefaultNamespace(ns),
		containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect containerd %s: %w", cfg.Address, err)
	}
	if _, err := client.Version(namespaces.WithNamespace(dialCtx, ns)); err != nil {
		client.Close()
		return nil, fmt.Errorf("containerd %s version: %w", cfg.Address, err)
	}
	rctx, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), ns))
	r := &Runtime{
		client:      client,
		namespace:   ns,
		snapshotter: sn,
		logger:      logger.With("component", "ctrtask"),
		ctx:         rctx,
		cancel:      cancel,
		starts:      make(chan struct{}, startLimit()),
		tasks:       make(map[string]*entry),
		ooms:        make(map[string]bool),
	}
	go r.watchOOM()
	return r, nil
}

// Client is the underlying containerd client (for image handling).
func (r *Runtime) Client() *containerd.Client { return r.client }

// Namespace is the containerd namespace in use.
func (r *Runtime) Namespace() string { return r.namespace }

// Snapshotter is the snapshotter containers are created on.
func (r *Runtime) Snapshotter() string { return r.snapshotter }

// WithNamespace returns ctx carrying the Runtime's containerd namespace.
func (r *Runtime) WithNamespace(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// Close stops the Runtime's goroutines and closes the connection. Tasks keep
// running in containerd.
func (r *Runtime) Close() error {
	r.cancel()
	return r.client.Close()
}

// Version returns containerd's version string.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.WithNamespace(ctx))
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	return v.Version, nil
}

// ContainerID maps a task ID ("<alloc>/<task>") to its container ID: "/"
// becomes "-". containerd IDs allow only letters and digits joined by
// single ".", "_" or "-", so any other run of characters becomes one "-"
// and leading or trailing separators are dropped.
func ContainerID(taskID string) string {
	var b strings.Builder
	pendingSep := byte(0)
	for i := 0; i < len(taskID); i++ {
		c := taskID[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum {
			if pendingSep != 0 && b.Len() > 0 {
				b.WriteByte(pendingSep)
			}
			pendingSep = 0
			b.WriteByte(c)
			continue
		}
		if pendingSep == 0 && (c == '.' || c == '_' || c == '-') {
			pendingSep = c
		} else {
			pendingSep = '-'
		}
	}
	return b.String()
}

func (r *Runtime) lookup(id string) (*entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.tasks[id]
	if !ok {
		return nil, fmt.Errorf("task %q: %w", id, driver.ErrTaskNotFound)
	}
	return e, nil
}

func (r *Runtime) track(e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks[e.id] = e
}

func (r *Runtime) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.tasks[id]; ok {
		delete(r.ooms, e.containerID)
	}
	delete(r.tasks, id)
}

func (r *Runtime) sawOOM(containerID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ooms[containerID]
}
