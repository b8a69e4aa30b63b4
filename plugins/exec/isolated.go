package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/ctrtask"
)

// ErrContainerdNotConfigured is the exec driver's answer when the agent
// gave the plugin no containerd to use.
var ErrContainerdNotConfigured = errors.New("exec needs containerd; set the agent's containerd address and namespace")

// fingerprintTimeout bounds how long Fingerprint waits for containerd.
const fingerprintTimeout = 5 * time.Second

// isolated is the exec driver's side of the plugin: a ctrtask Runtime.
type isolated struct {
	rt     *ctrtask.Runtime
	logger *slog.Logger
}

func (i *isolated) close() { _ = i.rt.Close() }

// isolated returns the containerd runtime, connecting on first use (and
// again after a failed attempt, so a containerd that comes up later is
// picked up by the next fingerprint).
func (d *Driver) isolated(ctx context.Context) (*isolated, error) {
	d.mu.Lock()
	iso, cfg := d.isoBox, d.cfg.Containerd
	d.mu.Unlock()
	if iso != nil {
		return iso, nil
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("exec needs the plugin to run as root")
	}
	if cfg == nil || cfg.Address == "" {
		return nil, ErrContainerdNotConfigured
	}
	// ctrtask.Connect's dial waits its own 10 s on a dead socket; a plain
	// connect fails at once when nothing listens, keeping Fingerprint quick.
	probe, err := net.DialTimeout("unix", strings.TrimPrefix(cfg.Address, "unix://"), time.Second)
	if err != nil {
		return nil, fmt.Errorf("exec: containerd unreachable: %w", err)
	}
	probe.Close()
	cctx, cancel := context.WithTimeout(ctx, fingerprintTimeout)
	defer cancel()
	rt, err := ctrtask.Connect(cctx, cfg, d.logger)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.isoBox != nil || d.cfg.Containerd != cfg {
		// Another caller connected first, or SetConfig changed the
		// config meanwhile: keep theirs.
		_ = rt.Close()
		if d.isoBox == nil {
			return nil, errors.New("exec: containerd config changed while connecting; retry")
		}
		return d.isoBox, nil
	}
	d.isoBox = &isolated{rt: rt, logger: d.logger}
	return d.isoBox, nil
}

func (d *Driver) fingerprintExec(ctx context.Context) *driver.Fingerprint {
	fp := &driver.Fingerprint{Name: NameExec}
	iso, err := d.isolated(ctx)
	if err != nil {
		fp.HealthDescription = err.Error()
		return fp
	}
	vctx, cancel := context.WithTimeout(ctx, fingerprintTimeout)
	defer cancel()
	version, err := iso.rt.Version(vctx)
	if err != nil {
		fp.HealthDescription = fmt.Sprintf("containerd unreachable: %v", err)
		return fp
	}
	fp.Detected, fp.Healthy, fp.HealthDescription = true, true, "healthy"
	fp.Attributes = map[string]string{"driver.exec": "1", "driver.exec.containerd_version": version}
	return fp
}

// execHandle is an exec task's TaskHandle.State: the common fields
// plus ctrtask's own state.
type execHandle struct {
	handleState
	// Ctr is ctrtask's own handle state, given back to ctrtask.Recover.
	Ctr json.RawMessage `json:"ctr"`
}

func (i *isolated) start(ctx context.Context, cfg *driver.TaskConfig) (task, *driver.TaskHandle, error) {
	ec, err := parseExecConfig(cfg.DriverConfig)
	if err != nil {
		return nil, nil, err
	}
	rootfs, err := prepareRootfs(cfg.TaskDir)
	if err != nil {
		return nil, nil, err
	}
	opts, err := execSpecOpts(cfg, ec)
	if err != nil {
		return nil, nil, err
	}
	// ctrtask would resolve cfg.User in the rootfs's /etc/passwd before
	// the bind mounts exist; execSpecOpts resolved it on the host instead.
	ctrCfg := *cfg
	ctrCfg.User = ""
	h, err := i.rt.Start(ctx, &ctrCfg, ctrtask.CreateOptions{RootfsPath: rootfs, SpecOpts: opts,
		ShimGroup: ctrtask.AllocShimGroup(NameExec, cfg)})
	if err != nil {
		return nil, nil, err
	}
	state, err := json.Marshal(execHandle{
		handleState: handleState{Kind: NameExec, ContainerID: ctrtask.ContainerID(cfg.ID)},
		Ctr:         h.State,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encode handle state: %w", err)
	}
	t := &isoTask{rt: i.rt, cfg: cfg}
	return t, &driver.TaskHandle{Version: handleVersion, Config: cfg, State: state, StartedAt: h.StartedAt}, nil
}

func (i *isolated) recover(ctx context.Context, handle *driver.TaskHandle, _ *handleState) (task, error) {
	var eh execHandle
	if err := json.Unmarshal(handle.State, &eh); err != nil {
		return nil, fmt.Errorf("decode exec handle state: %w", err)
	}
	ctrHandle := *handle
	ctrHandle.Version = ctrtask.HandleStateVersion
	ctrHandle.State = eh.Ctr
	if err := i.rt.Recover(ctx, &ctrHandle); err != nil {
		return nil, err
	}
	return &isoTask{rt: i.rt, cfg: handle.Config}, nil
}

// isoTask is an exec task: a containerd task tracked by ctrtask.
type isoTask struct {
	rt  *ctrtask.Runtime
	cfg *driver.TaskConfig
}

func (t *isoTask) wait(ctx context.Context) (*driver.ExitResult, error) {
	return t.rt.Wait(ctx, t.cfg.ID)
}

func (t *isoTask) stop(ctx context.Context, timeout time.Duration, signal string) error {
	return t.rt.Stop(ctx, t.cfg.ID, timeout, signal)
}

func (t *isoTask) destroy(ctx context.Context, force bool) error {
	if !force {
		st, err := t.rt.Inspect(ctx, t.cfg.ID)
		if err == nil && st.State == driver.TaskStateRunning {
			return fmt.Errorf("destroy task %s: %w", t.cfg.ID, ErrTaskRunning)
		}
	}
	if err := t.rt.Destroy(ctx, t.cfg.ID, force); err != nil {
		return err
	}
	removeRootfs(t.cfg.TaskDir)
	return nil
}

func (t *isoTask) inspect(ctx context.Context) (*driver.TaskStatus, error) {
	st, err := t.rt.Inspect(ctx, t.cfg.ID)
	if err != nil {
		return nil, err
	}
	st.Name = t.cfg.TaskName
	return st, nil
}

func (t *isoTask) signal(ctx context.Context, signal string) error {
	return t.rt.Signal(ctx, t.cfg.ID, signal)
}

func (t *isoTask) stats(ctx context.Context) (*driver.TaskResourceUsage, error) {
	return t.rt.Stats(ctx, t.cfg.ID)
}

func (t *isoTask) exec(ctx context.Context, opts *driver.ExecOptions) (int, error) {
	return t.rt.Exec(ctx, t.cfg.ID, opts)
}
