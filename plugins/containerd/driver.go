// Package containerd is berth's built-in containerd driver plugin. One
// Driver serves two driver names:
//
//   - "containerd": images by reference, a schema close to
//     nomad-driver-containerd (image, command, args, entrypoint, cwd,
//     privileged, readonly_rootfs, cap_add, cap_drop, mounts, hostname,
//     sysctl, host_network, auth, force_pull, labels);
//   - "docker": the subset of Nomad's docker driver config berth can run on
//     containerd (image, command, args, entrypoint, work_dir, privileged,
//     cap_add, cap_drop, volumes, mount, labels, hostname, network_mode,
//     ports, auth, auth_soft_fail, force_pull, load, sysctl,
//     readonly_rootfs, dns_servers, ulimit, image_pull_timeout), so that
//     existing job files run unchanged. Any other docker option is a
//     validation error naming it.
//
// Tasks run through plugins/internal/ctrtask.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/ctrtask"
)

// Driver implements driver.Driver for "containerd" and "docker".
type Driver struct {
	logger *slog.Logger

	mu  sync.Mutex
	cfg *driver.PluginConfig
	rt  *ctrtask.Runtime
}

// New returns the driver; it connects to containerd on SetConfig.
func New(logger *slog.Logger) driver.Driver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{logger: logger.With("component", "containerd_driver")}
}

var errNotConfigured = errors.New("containerd driver: SetConfig has not been called with a containerd address")

// SetConfig stores the configuration and connects to containerd. An
// unreachable containerd is not an error here: Fingerprint reports it and
// later calls retry the connection.
func (d *Driver) SetConfig(ctx context.Context, cfg *driver.PluginConfig) error {
	if cfg == nil || cfg.Containerd == nil || cfg.Containerd.Address == "" {
		return errNotConfigured
	}
	d.mu.Lock()
	old := d.rt
	d.cfg, d.rt = cfg, nil
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if _, err := d.runtime(ctx); err != nil {
		d.logger.Warn("containerd not reachable yet", "address", cfg.Containerd.Address, "error", err)
	}
	return nil
}

// runtime returns the connected Runtime, connecting on first use.
func (d *Driver) runtime(ctx context.Context) (*ctrtask.Runtime, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rt != nil {
		return d.rt, nil
	}
	if d.cfg == nil || d.cfg.Containerd == nil {
		return nil, errNotConfigured
	}
	rt, err := ctrtask.Connect(ctx, d.cfg.Containerd, d.logger)
	if err != nil {
		return nil, err
	}
	d.rt = rt
	return rt, nil
}

func (d *Driver) config() *driver.PluginConfig {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Fingerprint reports "containerd" and "docker", detected and healthy iff
// containerd answers.
func (d *Driver) Fingerprint(ctx context.Context) ([]*driver.Fingerprint, error) {
	fp := func(name string) *driver.Fingerprint {
		return &driver.Fingerprint{Name: name, Attributes: map[string]string{}}
	}
	out := []*driver.Fingerprint{fp(NameContainerd), fp(NameDocker)}
	var version string
	rt, err := d.runtime(ctx)
	if err == nil {
		vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		version, err = rt.Version(vctx)
		cancel()
	}
	for _, f := range out {
		if err != nil {
			f.HealthDescription = err.Error()
			continue
		}
		f.Detected, f.Healthy = true, true
		f.HealthDescription = "healthy"
		f.Attributes["driver."+f.Name+".version"] = version
		f.Attributes["driver."+f.Name+".runtime"] = "containerd"
	}
	return out, nil
}

// Capabilities are the same for both names.
func (d *Driver) Capabilities(_ context.Context, name string) (*driver.Capabilities, error) {
	if name != NameContainerd && name != NameDocker {
		return nil, fmt.Errorf("containerd plugin does not serve driver %q", name)
	}
	return &driver.Capabilities{SendSignals: true, Exec: true, FSIsolation: "image", NetNamespace: true}, nil
}

// ValidateTaskConfig decodes the driver config and reports every problem.
func (d *Driver) ValidateTaskConfig(_ context.Context, cfg *driver.TaskConfig) error {
	if cfg == nil {
		return errors.New("validate task: nil config")
	}
	_, err := parseTaskSpec(cfg)
	return err
}

// StartTask validates, ensures the image and starts the container.
func (d *Driver) StartTask(ctx context.Context, cfg *driver.TaskConfig) (*driver.TaskHandle, error) {
	s, err := parseTaskSpec(cfg)
	if err != nil {
		return nil, err
	}
	rt, err := d.runtime(ctx)
	if err != nil {
		return nil, err
	}
	pcfg := d.config()
	nctx := rt.WithNamespace(ctx)
	img, err := d.ensureImage(nctx, rt.Client(), cfg, s, pcfg.Containerd, rt.Snapshotter())
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", cfg.ID, err)
	}
	volumesDir := ""
	if pcfg.StateDir != "" {
		volumesDir = filepath.Join(pcfg.StateDir, "volumes")
	}
	opts, err := specOpts(nctx, cfg, s, img, volumesDir)
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", cfg.ID, err)
	}
	h, err := rt.Start(ctx, cfg, ctrtask.CreateOptions{Image: img, SpecOpts: opts, Labels: s.Labels,
		ShimGroup: ctrtask.AllocShimGroup(NameContainerd, cfg)})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// RecoverTask re-attaches to a task from its handle.
func (d *Driver) RecoverTask(ctx context.Context, h *driver.TaskHandle) error {
	rt, err := d.runtime(ctx)
	if err != nil {
		return err
	}
	return rt.Recover(ctx, h)
}

// WaitTask blocks until the task exits.
func (d *Driver) WaitTask(ctx context.Context, id string) (*driver.ExitResult, error) {
	rt, err := d.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rt.Wait(ctx, id)
}

// StopTask signals (SIGTERM by default), then kills after timeout.
func (d *Driver) StopTask(ctx context.Context, id string, timeout time.Duration, signal string) error {
	rt, err := d.runtime(ctx)
	if err != nil {
		return err
	}
	return rt.Stop(ctx, id, timeout, signal)
}

// DestroyTask removes the task, its container and snapshot.
func (d *Driver) DestroyTask(ctx context.Context, id string, force bool) error {
	rt, err := d.runtime(ctx)
	if err != nil {
		return err
	}
	return rt.Destroy(ctx, id, force)
}

// InspectTask reports the task's status.
func (d *Driver) InspectTask(ctx context.Context, id string) (*driver.TaskStatus, error) {
	rt, err := d.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rt.Inspect(ctx, id)
}

// SignalTask delivers a signal to the task.
func (d *Driver) SignalTask(ctx context.Context, id, signal string) error {
	rt, err := d.runtime(ctx)
	if err != nil {
		return err
	}
	return rt.Signal(ctx, id, signal)
}

// TaskStats samples the task's cgroup.
func (d *Driver) TaskStats(ctx context.Context, id string) (*driver.TaskResourceUsage, error) {
	rt, err := d.runtime(ctx)
	if err != nil {
		return nil, err
	}
	return rt.Stats(ctx, id)
}

// ExecTask runs a command in the task.
func (d *Driver) ExecTask(ctx context.Context, id string, opts *driver.ExecOptions) (int, error) {
	rt, err := d.runtime(ctx)
	if err != nil {
		return -1, err
	}
	return rt.Exec(ctx, id, opts)
}

// Close releases the containerd connection (tasks keep running).
func (d *Driver) Close() error {
	d.mu.Lock()
	rt := d.rt
	d.rt = nil
	d.mu.Unlock()
	if rt != nil {
		return rt.Close()
	}
	return nil
}
