// Package hostproctest is a driver.Driver for tests of the agent: it runs
// tasks as real host processes with os/exec (no containerd, no plugin
// process). Task config: {"command": "/bin/sh", "args": ["-c", "..."]}.
// It serves the driver name given to New.
package hostproctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
)

// Config is a task's driver config.
type Config struct {
	Command string   `json:"command"`
	Args    []string `json:"args"`
}

type proc struct {
	pid     int
	cmd     *exec.Cmd // nil for a process recovered by PID
	done    chan struct{}
	result  *driver.ExitResult
	started time.Time
}

// Driver runs host processes.
type Driver struct {
	name string
	mu   sync.Mutex
	// procs by task ID
	procs map[string]*proc
	// Starts counts StartTask calls per task ID.
	starts map[string]int
}

// New returns a driver serving name.
func New(name string) *Driver {
	return &Driver{name: name, procs: map[string]*proc{}, starts: map[string]int{}}
}

// Starts returns how many times the task was started.
func (d *Driver) Starts(taskID string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts[taskID]
}

// Forget drops what the driver knows of its tasks (as a new plugin process
// would), so that RecoverTask must find them by PID.
func (d *Driver) Forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.procs = map[string]*proc{}
}

// TaskIDs lists the tasks the driver knows.
func (d *Driver) TaskIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id := range d.procs {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (d *Driver) SetConfig(context.Context, *driver.PluginConfig) error { return nil }

func (d *Driver) Fingerprint(context.Context) ([]*driver.Fingerprint, error) {
	return []*driver.Fingerprint{{Name: d.name, Detected: true, Healthy: true, HealthDescription: "Healthy",
		Attributes: map[string]string{"driver." + d.name + ".version": "test"}}}, nil
}

func (d *Driver) Capabilities(context.Context, string) (*driver.Capabilities, error) {
	return &driver.Capabilities{SendSignals: true, Exec: true, FSIsolation: "none"}, nil
}

func parse(raw json.RawMessage) (*Config, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	if c.Command == "" {
		return nil, errors.New("command is required")
	}
	return &c, nil
}

func (d *Driver) ValidateTaskConfig(_ context.Context, cfg *driver.TaskConfig) error {
	_, err := parse(cfg.DriverConfig)
	return err
}

func openOut(path string) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	return os.OpenFile(path, os.O_WRONLY, 0)
}

func (d *Driver) StartTask(_ context.Context, cfg *driver.TaskConfig) (*driver.TaskHandle, error) {
	c, err := parse(cfg.DriverConfig)
	if err != nil {
		return nil, err
	}
	stdout, err := openOut(cfg.StdoutPath)
	if err != nil {
		return nil, fmt.Errorf("open stdout: %w", err)
	}
	defer stdout.Close()
	stderr, err := openOut(cfg.StderrPath)
	if err != nil {
		return nil, fmt.Errorf("open stderr: %w", err)
	}
	defer stderr.Close()
	cmd := exec.Command(c.Command, c.Args...)
	for k, v := range cfg.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = cfg.TaskDir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Command, err)
	}
	p := &proc{pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), started: time.Now()}
	go func() {
		err := cmd.Wait()
		res := &driver.ExitResult{}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				res.Signal = int(ws.Signal())
			} else {
				res.ExitCode = ee.ExitCode()
			}
		} else if err != nil {
			res.Err = err.Error()
		}
		p.result = res
		close(p.done)
	}()
	d.mu.Lock()
	d.procs[cfg.ID] = p
	d.starts[cfg.ID]++
	d.mu.Unlock()
	state, _ := json.Marshal(map[string]int{"pid": p.pid})
	return &driver.TaskHandle{Version: 1, Config: cfg, State: state, StartedAt: p.started}, nil
}

func (d *Driver) get(id string) (*proc, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.procs[id]
	if p == nil {
		return nil, fmt.Errorf("task %s: %w", id, driver.ErrTaskNotFound)
	}
	return p, nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// RecoverTask re-attaches by PID; a process that is gone is ErrTaskNotFound.
func (d *Driver) RecoverTask(_ context.Context, h *driver.TaskHandle) error {
	if _, err := d.get(h.Config.ID); err == nil {
		return nil
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(h.State, &st); err != nil || st.Pid == 0 || !alive(st.Pid) {
		return fmt.Errorf("task %s: %w", h.Config.ID, driver.ErrTaskNotFound)
	}
	p := &proc{pid: st.Pid, done: make(chan struct{}), started: h.StartedAt}
	go func() {
		// not our child: poll for its end (bounded by the process's life)
		for alive(p.pid) {
			time.Sleep(20 * time.Millisecond)
		}
		p.result = &driver.ExitResult{Err: "exit status unknown (recovered process)"}
		close(p.done)
	}()
	d.mu.Lock()
	d.procs[h.Config.ID] = p
	d.mu.Unlock()
	return nil
}

func (d *Driver) WaitTask(ctx context.Context, id string) (*driver.ExitResult, error) {
	p, err := d.get(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
		return p.result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func sigNum(name string) syscall.Signal {
	switch name {
	case "SIGINT":
		return syscall.SIGINT
	case "SIGKILL":
		return syscall.SIGKILL
	case "SIGHUP":
		return syscall.SIGHUP
	case "SIGUSR1":
		return syscall.SIGUSR1
	case "SIGUSR2":
		return syscall.SIGUSR2
	case "SIGQUIT":
		return syscall.SIGQUIT
	}
	return syscall.SIGTERM
}

func (d *Driver) StopTask(ctx context.Context, id string, timeout time.Duration, signal string) error {
	p, err := d.get(id)
	if err != nil {
		return err
	}
	_ = syscall.Kill(-p.pid, sigNum(signal))
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("process did not die")
	}
}

func (d *Driver) DestroyTask(ctx context.Context, id string, force bool) error {
	p, err := d.get(id)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	default:
		if !force {
			return errors.New("task is running")
		}
		if err := d.StopTask(ctx, id, 0, "SIGKILL"); err != nil {
			return err
		}
	}
	d.mu.Lock()
	delete(d.procs, id)
	d.mu.Unlock()
	return nil
}

func (d *Driver) InspectTask(_ context.Context, id string) (*driver.TaskStatus, error) {
	p, err := d.get(id)
	if err != nil {
		return nil, err
	}
	st := &driver.TaskStatus{ID: id, State: driver.TaskStateRunning, StartedAt: p.started,
		Attributes: map[string]string{"pid": fmt.Sprint(p.pid)}}
	select {
	case <-p.done:
		st.State, st.ExitResult = driver.TaskStateExited, p.result
	default:
	}
	return st, nil
}

func (d *Driver) SignalTask(_ context.Context, id, signal string) error {
	p, err := d.get(id)
	if err != nil {
		return err
	}
	return syscall.Kill(p.pid, sigNum(signal))
}

func (d *Driver) TaskStats(_ context.Context, id string) (*driver.TaskResourceUsage, error) {
	if _, err := d.get(id); err != nil {
		return nil, err
	}
	return &driver.TaskResourceUsage{Timestamp: time.Now().UnixNano()}, nil
}

func (d *Driver) ExecTask(ctx context.Context, id string, opts *driver.ExecOptions) (int, error) {
	if _, err := d.get(id); err != nil {
		return 0, err
	}
	if len(opts.Command) == 0 {
		return 0, errors.New("no command")
	}
	cmd := exec.CommandContext(ctx, opts.Command[0], opts.Command[1:]...)
	cmd.Stdout, cmd.Stderr = opts.Stdout, opts.Stderr
	if opts.Stdin != nil {
		// our own pipe: the caller's stdin stream stays open after the
		// command exits, and os/exec would wait for its copy to end
		pr, pw, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		defer pw.Close()
		go func() { _, _ = io.Copy(pw, opts.Stdin); pw.Close() }()
		cmd.Stdin = pr
		defer pr.Close()
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

var _ driver.Driver = (*Driver)(nil)
