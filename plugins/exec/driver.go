// Package exec is berth's plugin for host processes. It serves two driver
// names, as Nomad does:
//
//   - "raw_exec": the command runs on the host as its own process group,
//     without isolation. It is off unless PluginConfig.RawExecEnabled.
//   - "exec": the command runs through containerd (plugins/internal/ctrtask)
//     in its own mount, pid and IPC namespaces and cgroup, chrooted into
//     <TaskDir>/.rootfs, which is made of read-only bind mounts of the
//     host's /bin, /sbin, /lib, /lib32, /lib64, /usr and /etc, plus the
//     allocation's /alloc, /local and /secrets.
//
// Config blocks are RawExecConfig (command, args) and ExecConfig
// (command, args, cap_add, cap_drop); unknown options are errors.
//
// raw_exec tasks get, as root on a cgroup v1 host, a memory and a cpu
// cgroup under berth/raw_exec/ that enforces Resources (best effort:
// without them the task runs unconfined, with a warning).
//
// Tasks survive the plugin process: raw_exec process groups are started
// without a parent-death signal, exec tasks live under containerd shims.
// RecoverTask re-attaches from TaskHandle.State, whose "kind" says which
// driver owns the task. A raw_exec task is recovered only while its pid
// still names the process that started at the recorded start time (else
// ErrTaskNotFound); its exit is then seen through a pidfd, and since
// only a parent can learn an exit status, WaitTask reports it with
// ExitUnknown in ExitResult.Err. exec tasks recover through containerd,
// exit status included.
package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
)

// task is one running (or finished, not yet destroyed) task of either kind.
type task interface {
	wait(ctx context.Context) (*driver.ExitResult, error)
	stop(ctx context.Context, timeout time.Duration, signal string) error
	// destroy releases what the task holds; with force it kills first.
	destroy(ctx context.Context, force bool) error
	inspect(ctx context.Context) (*driver.TaskStatus, error)
	signal(ctx context.Context, signal string) error
	stats(ctx context.Context) (*driver.TaskResourceUsage, error)
	exec(ctx context.Context, opts *driver.ExecOptions) (int, error)
}

// Driver serves "exec" and "raw_exec".
type Driver struct {
	logger *slog.Logger

	mu     sync.Mutex
	cfg    driver.PluginConfig
	tasks  map[string]task
	isoBox *isolated // containerd side, connected lazily
}

// New returns the exec plugin's driver.
func New(logger *slog.Logger) driver.Driver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{
		logger: logger.With("component", "exec_driver"),
		tasks:  map[string]task{},
	}
}

// SetConfig implements driver.Driver.
func (d *Driver) SetConfig(_ context.Context, cfg *driver.PluginConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cfg == nil {
		cfg = &driver.PluginConfig{}
	}
	// A new containerd config drops the old connection (exec tasks
	// started through it are then recovered by the agent); the same
	// config keeps it.
	if d.isoBox != nil && !reflect.DeepEqual(d.cfg.Containerd, cfg.Containerd) {
		d.isoBox.close()
		d.isoBox = nil
	}
	d.cfg = *cfg
	return nil
}

func (d *Driver) config() driver.PluginConfig {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Fingerprint implements driver.Driver.
func (d *Driver) Fingerprint(ctx context.Context) ([]*driver.Fingerprint, error) {
	return []*driver.Fingerprint{d.fingerprintExec(ctx), d.fingerprintRawExec()}, nil
}

func (d *Driver) fingerprintRawExec() *driver.Fingerprint {
	fp := &driver.Fingerprint{Name: NameRawExec, Detected: true}
	if !d.config().RawExecEnabled {
		fp.HealthDescription = "disabled; enable raw_exec in the agent config"
		return fp
	}
	fp.Healthy = true
	fp.HealthDescription = "healthy"
	fp.Attributes = map[string]string{"driver.raw_exec": "1"}
	return fp
}

// Capabilities implements driver.Driver.
func (d *Driver) Capabilities(_ context.Context, name string) (*driver.Capabilities, error) {
	switch name {
	case NameRawExec:
		return &driver.Capabilities{SendSignals: true, Exec: true, FSIsolation: "none"}, nil
	case NameExec:
		return &driver.Capabilities{SendSignals: true, Exec: true, FSIsolation: "chroot", NetNamespace: true}, nil
	}
	return nil, fmt.Errorf("capabilities: driver %q is not served by the exec plugin", name)
}

// ValidateTaskConfig implements driver.Driver.
func (d *Driver) ValidateTaskConfig(_ context.Context, cfg *driver.TaskConfig) error {
	switch cfg.Driver {
	case NameRawExec:
		_, err := parseRawExecConfig(cfg.DriverConfig)
		return err
	case NameExec:
		_, err := parseExecConfig(cfg.DriverConfig)
		return err
	}
	return fmt.Errorf("%w: driver %q is not served by the exec plugin", ErrInvalidConfig, cfg.Driver)
}

// ErrRawExecDisabled is StartTask's answer for raw_exec when the agent did
// not enable it.
var ErrRawExecDisabled = errors.New("raw_exec is disabled; enable raw_exec in the agent config")

// StartTask implements driver.Driver.
func (d *Driver) StartTask(ctx context.Context, cfg *driver.TaskConfig) (*driver.TaskHandle, error) {
	if cfg == nil || cfg.ID == "" {
		return nil, fmt.Errorf("start task: %w: empty task ID", ErrInvalidConfig)
	}
	d.mu.Lock()
	_, exists := d.tasks[cfg.ID]
	d.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("start task %s: already running", cfg.ID)
	}
	var (
		t      task
		handle *driver.TaskHandle
		err    error
	)
	switch cfg.Driver {
	case NameRawExec:
		if !d.config().RawExecEnabled {
			return nil, fmt.Errorf("start task %s: %w", cfg.ID, ErrRawExecDisabled)
		}
		t, handle, err = startRawExec(cfg, d.logger)
	case NameExec:
		var iso *isolated
		if iso, err = d.isolated(ctx); err == nil {
			t, handle, err = iso.start(ctx, cfg)
		}
	default:
		err = fmt.Errorf("%w: driver %q is not served by the exec plugin", ErrInvalidConfig, cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", cfg.ID, err)
	}
	d.mu.Lock()
	d.tasks[cfg.ID] = t
	d.mu.Unlock()
	d.logger.Info("task started", "task_id", cfg.ID, "driver", cfg.Driver)
	return handle, nil
}

// RecoverTask implements driver.Driver.
func (d *Driver) RecoverTask(ctx context.Context, handle *driver.TaskHandle) error {
	if handle == nil || handle.Config == nil {
		return fmt.Errorf("recover task: %w: handle without config", driver.ErrTaskNotFound)
	}
	id := handle.Config.ID
	d.mu.Lock()
	_, known := d.tasks[id]
	d.mu.Unlock()
	if known {
		return nil // this process started it: nothing to re-attach
	}
	if handle.Version != handleVersion {
		return fmt.Errorf("recover task %s: handle version %d, want %d", id, handle.Version, handleVersion)
	}
	st, err := decodeHandleState(handle.State)
	if err != nil {
		return fmt.Errorf("recover task %s: %w", id, err)
	}
	var t task
	switch st.Kind {
	case NameRawExec:
		t, err = recoverRawExec(handle, st, d.logger)
	case NameExec:
		var iso *isolated
		if iso, err = d.isolated(ctx); err == nil {
			t, err = iso.recover(ctx, handle, st)
		}
	default:
		err = fmt.Errorf("handle of unknown kind %q", st.Kind)
	}
	if err != nil {
		return fmt.Errorf("recover task %s: %w", id, err)
	}
	d.mu.Lock()
	d.tasks[id] = t
	d.mu.Unlock()
	d.logger.Info("task recovered", "task_id", id, "driver", st.Kind)
	return nil
}

func (d *Driver) task(id string) (task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.tasks[id]
	if !ok {
		return nil, fmt.Errorf("task %s: %w", id, driver.ErrTaskNotFound)
	}
	return t, nil
}

// WaitTask implements driver.Driver.
func (d *Driver) WaitTask(ctx context.Context, taskID string) (*driver.ExitResult, error) {
	t, err := d.task(taskID)
	if err != nil {
		return nil, err
	}
	return t.wait(ctx)
}

// StopTask implements driver.Driver.
func (d *Driver) StopTask(ctx context.Context, taskID string, timeout time.Duration, signal string) error {
	t, err := d.task(taskID)
	if err != nil {
		return err
	}
	return t.stop(ctx, timeout, signal)
}

// DestroyTask implements driver.Driver.
func (d *Driver) DestroyTask(ctx context.Context, taskID string, force bool) error {
	t, err := d.task(taskID)
	if err != nil {
		return err
	}
	if err := t.destroy(ctx, force); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.tasks, taskID)
	d.mu.Unlock()
	d.logger.Info("task destroyed", "task_id", taskID)
	return nil
}

// InspectTask implements driver.Driver.
func (d *Driver) InspectTask(ctx context.Context, taskID string) (*driver.TaskStatus, error) {
	t, err := d.task(taskID)
	if err != nil {
		return nil, err
	}
	return t.inspect(ctx)
}

// SignalTask implements driver.Driver.
func (d *Driver) SignalTask(ctx context.Context, taskID string, signal string) error {
	t, err := d.task(taskID)
	if err != nil {
		return err
	}
	return t.signal(ctx, signal)
}

// TaskStats implements driver.Driver.
func (d *Driver) TaskStats(ctx context.Context, taskID string) (*driver.TaskResourceUsage, error) {
	t, err := d.task(taskID)
	if err != nil {
		return nil, err
	}
	return t.stats(ctx)
}

// ExecTask implements driver.Driver.
func (d *Driver) ExecTask(ctx context.Context, taskID string, opts *driver.ExecOptions) (int, error) {
	t, err := d.task(taskID)
	if err != nil {
		return -1, err
	}
	if opts == nil || len(opts.Command) == 0 {
		return -1, fmt.Errorf("exec in task %s: empty command", taskID)
	}
	return t.exec(ctx, opts)
}

// ErrTaskRunning is DestroyTask's answer for a running task without force.
var ErrTaskRunning = errors.New("task is still running; stop it or destroy with force")
