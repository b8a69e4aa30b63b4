package ctrtask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/plugins/driver"
)

// CreateOptions are the driver-specific parts of a container.
type CreateOptions struct {
	// Image is the (unpacked) image the rootfs is snapshotted from; nil
	// when RootfsPath is used.
	Image containerd.Image
	// RootfsPath is a host directory used as the rootfs as is (no
	// snapshot), for the exec driver.
	RootfsPath string
	// SpecOpts are applied after the image config and CommonSpecOpts.
	SpecOpts []oci.SpecOpts
	// Labels are extra container labels.
	Labels map[string]string
	// ShimGroup, when set, puts the task in the containerd shim of every
	// other task with the same group (runc's shim groups containers by
	// the ShimGroupAnnotation, as Kubernetes does a pod's): one shim
	// process per allocation instead of one per task, ~12 MiB less per
	// extra task. The shim is the group's fault domain.
	ShimGroup string
}

// AllocShimGroup is the ShimGroup of cfg's allocation for one driver
// (each driver's Runtime serializes only its own creations): "" when the
// task names no allocation.
func AllocShimGroup(driverName string, cfg *driver.TaskConfig) string {
	if cfg == nil || cfg.AllocID == "" {
		return ""
	}
	return driverName + "-" + cfg.AllocID
}

// ShimGroupAnnotation is the OCI annotation containerd's runc v2 shim
// groups containers by (runtime/v2/runc/manager: io.containerd.runc.v2.group,
// then io.kubernetes.cri.sandbox-id).
const ShimGroupAnnotation = "io.containerd.runc.v2.group"

// entry is one tracked task.
type entry struct {
	id          string
	containerID string
	container   containerd.Container
	task        containerd.Task
	shimGroup   string // CreateOptions.ShimGroup: deletes take its lock
	startedAt   time.Time

	done     chan struct{} // closed once result is set
	result   *driver.ExitResult
	exitedAt time.Time

	statsMu  sync.Mutex
	lastCPU  uint64 // ns, for Percent
	lastTime time.Time
}

// Start creates the container and its task, starts it and returns the
// handle to persist. On failure nothing is left behind.
func (r *Runtime) Start(ctx context.Context, cfg *driver.TaskConfig, o CreateOptions) (*driver.TaskHandle, error) {
	if cfg == nil || cfg.ID == "" {
		return nil, errors.New("start task: empty task ID")
	}
	if (o.Image == nil) == (o.RootfsPath == "") {
		return nil, errors.New("start task: exactly one of Image and RootfsPath must be set")
	}
	ctx = r.WithNamespace(ctx)
	cid := ContainerID(cfg.ID)

	var specOpts []oci.SpecOpts
	var copts []containerd.NewContainerOpts
	state := HandleState{ContainerID: cid, RootfsPath: o.RootfsPath, ShimGroup: o.ShimGroup}
	if o.Image != nil {
		state.Image = o.Image.Name()
		specOpts = append(specOpts, oci.WithImageConfig(o.Image))
		copts = append(copts,
			containerd.WithImage(o.Image),
			containerd.WithSnapshotter(r.snapshotter),
			containerd.WithNewSnapshot(cid, o.Image))
	} else {
		specOpts = append(specOpts, oci.WithRootFSPath(o.RootfsPath))
	}
	specOpts = append(specOpts, CommonSpecOpts(cfg)...)
	specOpts = append(specOpts, o.SpecOpts...)
	if o.ShimGroup != "" {
		specOpts = append(specOpts, oci.WithAnnotations(map[string]string{ShimGroupAnnotation: o.ShimGroup}))
	}
	labels := map[string]string{
		"berth.task_id": cfg.ID, "berth.alloc_id": cfg.AllocID,
		"berth.task": cfg.TaskName, "berth.job_id": cfg.JobID,
	}
	for k, v := range o.Labels {
		labels[k] = v
	}
	copts = append(copts, containerd.WithNewSpec(specOpts...), containerd.WithContainerLabels(labels))

	release, err := r.acquireStart(ctx)
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", cfg.ID, err)
	}
	defer release()
	container, err := r.client.NewContainer(ctx, cid, copts...)
	if errdefs.IsAlreadyExists(err) {
		// A leftover of an earlier attempt: replace it unless it still runs.
		if rerr := r.removeStale(ctx, cid); rerr != nil {
			return nil, fmt.Errorf("start task %s: %w", cfg.ID, rerr)
		}
		container, err = r.client.NewContainer(ctx, cid, copts...)
	}
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", cid, err)
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(r.WithNamespace(context.Background()), 10*time.Second)
		defer cancel()
		_ = container.Delete(dctx, containerd.WithSnapshotCleanup)
	}
	// NewTask is where containerd runs `shim start`; two at once for a
	// group whose shim is not up yet can start two shims (seen with
	// containerd 1.6.20), so a group's tasks create one at a time.
	unlockGroup := r.lockShimGroup(o.ShimGroup)
	task, err := container.NewTask(ctx, fifoCreator(cfg.StdoutPath, cfg.StderrPath))
	unlockGroup()
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("create task %s: %w", cid, err)
	}
	e := &entry{id: cfg.ID, containerID: cid, container: container, task: task, shimGroup: o.ShimGroup, done: make(chan struct{})}
	// Subscribe to the exit before starting so a fast exit is not missed.
	statusC, err := task.Wait(r.ctx)
	if err != nil {
		_ = r.deleteTask(ctx, o.ShimGroup, container, task, containerd.WithProcessKill)
		cleanup()
		return nil, fmt.Errorf("wait task %s: %w", cid, err)
	}
	if err := task.Start(ctx); err != nil {
		_ = r.deleteTask(r.WithNamespace(context.Background()), o.ShimGroup, container, task, containerd.WithProcessKill)
		cleanup()
		return nil, fmt.Errorf("start task %s: %w", cid, err)
	}
	e.startedAt = time.Now()
	r.track(e)
	go r.awaitExit(e, statusC)

	state.PID = task.Pid()
	raw, err := json.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("encode handle state: %w", err)
	}
	r.logger.Info("task started", "task_id", cfg.ID, "container_id", cid, "pid", state.PID)
	return &driver.TaskHandle{Version: HandleStateVersion, Config: cfg, State: raw, StartedAt: e.startedAt}, nil
}

// removeStale deletes a container left over under cid when its task is not
// running.
func (r *Runtime) removeStale(ctx context.Context, cid string) error {
	c, err := r.client.LoadContainer(ctx, cid)
	if err != nil {
		return fmt.Errorf("load stale container %s: %w", cid, err)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		st, err := t.Status(ctx)
		if err == nil && st.Status == containerd.Running {
			return fmt.Errorf("container %s already runs a task", cid)
		}
		if err := r.deleteTask(ctx, shimGroupOf(ctx, c), c, t, containerd.WithProcessKill); err != nil {
			return fmt.Errorf("delete stale task %s: %w", cid, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete stale container %s: %w", cid, err)
	}
	r.logger.Warn("removed stale container", "container_id", cid)
	return nil
}

// Recover re-attaches to the task of a handle written by Start (by this or
// an earlier Runtime). Output keeps going to the FIFOs the shim holds; no IO
// is re-attached here.
func (r *Runtime) Recover(ctx context.Context, h *driver.TaskHandle) error {
	if h == nil || h.Config == nil {
		return errors.New("recover task: handle without config")
	}
	ctx = r.WithNamespace(ctx)
	var st HandleState
	if len(h.State) > 0 {
		if err := json.Unmarshal(h.State, &st); err != nil {
			return fmt.Errorf("recover task %s: decode state: %w", h.Config.ID, err)
		}
	}
	if st.ContainerID == "" {
		st.ContainerID = ContainerID(h.Config.ID)
	}
	if _, err := r.lookup(h.Config.ID); err == nil {
		return nil // already tracked
	}
	container, err := r.client.LoadContainer(ctx, st.ContainerID)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("recover task %s: container %s: %w", h.Config.ID, st.ContainerID, driver.ErrTaskNotFound)
		}
		return fmt.Errorf("recover task %s: load container: %w", h.Config.ID, err)
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("recover task %s: no task in container %s: %w", h.Config.ID, st.ContainerID, driver.ErrTaskNotFound)
		}
		return fmt.Errorf("recover task %s: load task: %w", h.Config.ID, err)
	}
	statusC, err := task.Wait(r.ctx)
	if err != nil {
		return fmt.Errorf("recover task %s: wait: %w", h.Config.ID, err)
	}
	if st.ShimGroup == "" {
		st.ShimGroup = shimGroupOf(ctx, container) // a handle from before the field
	}
	e := &entry{id: h.Config.ID, containerID: st.ContainerID, container: container, task: task,
		shimGroup: st.ShimGroup, startedAt: h.StartedAt, done: make(chan struct{})}
	r.track(e)
	go r.awaitExit(e, statusC)
	r.logger.Info("task recovered", "task_id", h.Config.ID, "container_id", st.ContainerID)
	return nil
}

// awaitExit records the task's exit once containerd reports it. A wait
// that fails (containerd restarting, connection lost) is re-armed for a
// bounded time before the exit is recorded as undeterminable.
func (r *Runtime) awaitExit(e *entry, statusC <-chan containerd.ExitStatus) {
	const rewaitAttempts = 60
	res := &driver.ExitResult{}
	var at time.Time
	for attempt := 0; ; attempt++ {
		var st containerd.ExitStatus
		select {
		case st = <-statusC:
		case <-r.ctx.Done():
			return
		}
		code, exitedAt, err := st.Result()
		if err == nil {
			res.ExitCode, at = int(code), exitedAt
			// The shim reports a death by signal as 128+signal.
			if code > 128 && code < 128+65 {
				res.Signal = int(code) - 128
			}
			if res.Signal == int(syscall.SIGKILL) {
				res.OOMKilled = r.oomKilled(e)
			}
			break
		}
		if attempt >= rewaitAttempts {
			res.Err = fmt.Sprintf("wait task: %v", err)
			break
		}
		r.logger.Warn("task wait interrupted, re-arming", "task_id", e.id, "error", err)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if c, werr := e.task.Wait(r.ctx); werr == nil {
			statusC = c
		} else if errdefs.IsNotFound(werr) {
			res.Err = fmt.Sprintf("wait task: task vanished: %v", werr)
			break
		} else {
			failed := make(chan containerd.ExitStatus, 1)
			failed <- *containerd.NewExitStatus(containerd.UnknownExitStatus, time.Time{}, werr)
			statusC = failed
		}
	}
	e.result, e.exitedAt = res, at
	close(e.done)
	r.logger.Info("task exited", "task_id", e.id, "exit_code", res.ExitCode, "oom", res.OOMKilled)
}

// oomKilled tells an OOM kill from another SIGKILL: the shim's OOM event,
// or, since that event is published apart from the exit and can come
// after it on a loaded machine, the cgroup's own OOM kill count; when the
// shim cannot give that, a short wait for the event.
func (r *Runtime) oomKilled(e *entry) bool {
	if r.sawOOM(e.containerID) {
		return true
	}
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer cancel()
	if kills, ok := r.cgroupOOMKills(ctx, e); ok {
		return kills > 0
	}
	return r.waitOOM(e.containerID)
}

// waitOOM gives the OOM event (published separately from the exit) a short
// time to arrive.
func (r *Runtime) waitOOM(cid string) bool {
	deadline := time.Now().Add(300 * time.Millisecond)
	for {
		if r.sawOOM(cid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Wait blocks until the task exits or ctx ends. Any number of callers may
// wait; they all get the same result.
func (r *Runtime) Wait(ctx context.Context, id string) (*driver.ExitResult, error) {
	e, err := r.lookup(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.done:
		res := *e.result
		return &res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait task %s: %w", id, ctx.Err())
	case <-r.ctx.Done():
		return nil, fmt.Errorf("wait task %s: runtime closed", id)
	}
}

// exited reports whether the task's exit has been recorded.
func (e *entry) exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// fifoCreator makes the shim open the agent's FIFOs (or files) itself.
// An empty path next to a set one becomes /dev/null: the shim would fail
// to open "".
func fifoCreator(stdout, stderr string) cio.Creator {
	if stdout != "" || stderr != "" {
		if stdout == "" {
			stdout = os.DevNull
		}
		if stderr == "" {
			stderr = os.DevNull
		}
	}
	return func(string) (cio.IO, error) {
		return &pathIO{cfg: cio.Config{Stdout: stdout, Stderr: stderr}}, nil
	}
}

// pathIO is a cio.IO with paths only: the shim does the copying.
type pathIO struct{ cfg cio.Config }

func (p *pathIO) Config() cio.Config { return p.cfg }
func (p *pathIO) Cancel()            {}
func (p *pathIO) Wait()              {}
func (p *pathIO) Close() error       { return nil }
