package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memDriver is an in-memory Driver for testing the transport: it keeps
// what it is told and answers deterministically, so the same calls on a
// local memDriver and on one behind gRPC must give equal answers.
type memDriver struct {
	mu             sync.Mutex
	cfg            *PluginConfig
	setConfigCalls int
	tasks          map[string]*memTask
}

type memTask struct {
	cfg   *TaskConfig
	attrs map[string]string
}

var memStartedAt = time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC)

func newMemDriver() *memDriver { return &memDriver{tasks: map[string]*memTask{}} }

func (d *memDriver) SetConfig(_ context.Context, cfg *PluginConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg = cfg
	d.setConfigCalls++
	return nil
}

func (d *memDriver) Fingerprint(context.Context) ([]*Fingerprint, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	attrs := map[string]string{"driver.mem.version": "1.2.3", "set_config_calls": strconv.Itoa(d.setConfigCalls)}
	if d.cfg != nil {
		attrs["state_dir"] = d.cfg.StateDir
		attrs["extra"] = string(d.cfg.Extra)
		if d.cfg.Containerd != nil {
			attrs["containerd_address"] = d.cfg.Containerd.Address
			attrs["mirrors"] = strings.Join(d.cfg.Containerd.Mirrors["docker.io"], ",")
		}
	}
	return []*Fingerprint{
		{Name: "mem", Detected: true, Healthy: true, HealthDescription: "healthy", Attributes: attrs},
		{Name: "mem_off", Detected: false, HealthDescription: "disabled"},
	}, nil
}

func (d *memDriver) Capabilities(_ context.Context, name string) (*Capabilities, error) {
	if name != "mem" {
		return nil, fmt.Errorf("no driver %q in this plugin", name)
	}
	return &Capabilities{SendSignals: true, Exec: true, FSIsolation: "image", NetNamespace: true}, nil
}

func (d *memDriver) ValidateTaskConfig(_ context.Context, cfg *TaskConfig) error {
	var dc map[string]any
	if err := json.Unmarshal(cfg.DriverConfig, &dc); err != nil {
		return fmt.Errorf("driver config: %w", err)
	}
	if _, ok := dc["image"]; !ok {
		return errors.New(`missing required option "image"`)
	}
	return nil
}

func (d *memDriver) StartTask(_ context.Context, cfg *TaskConfig) (*TaskHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tasks[cfg.ID] = &memTask{cfg: cfg, attrs: map[string]string{"how": "started"}}
	return &TaskHandle{Version: 2, Config: cfg, State: json.RawMessage(`{"container":"` + cfg.AllocID + `"}`), StartedAt: memStartedAt}, nil
}

func (d *memDriver) RecoverTask(_ context.Context, h *TaskHandle) error {
	if string(h.State) == `{"gone":true}` {
		return fmt.Errorf("recover %s: %w", h.Config.ID, ErrTaskNotFound)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tasks[h.Config.ID] = &memTask{cfg: h.Config, attrs: map[string]string{
		"how": "recovered", "state": string(h.State), "version": strconv.Itoa(h.Version),
		"started_at": h.StartedAt.UTC().Format(time.RFC3339Nano),
	}}
	return nil
}

func (d *memDriver) task(id string) (*memTask, error) {
	t, ok := d.tasks[id]
	if !ok {
		return nil, fmt.Errorf("task %s: %w", id, ErrTaskNotFound)
	}
	return t, nil
}

func (d *memDriver) WaitTask(ctx context.Context, id string) (*ExitResult, error) {
	d.mu.Lock()
	t, err := d.task(id)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(id, "/blocks") {
		d.mu.Lock()
		t.attrs["waiting"] = "true"
		d.mu.Unlock()
		<-ctx.Done()
		d.mu.Lock()
		t.attrs["wait_ended"] = ctx.Err().Error()
		d.mu.Unlock()
		return nil, fmt.Errorf("wait %s: %w", id, ctx.Err())
	}
	return &ExitResult{ExitCode: 3, Signal: 9, OOMKilled: true, Err: "oom"}, nil
}

func (d *memDriver) StopTask(_ context.Context, id string, timeout time.Duration, signal string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.task(id)
	if err != nil {
		return err
	}
	t.attrs["stop_timeout"], t.attrs["stop_signal"] = timeout.String(), signal
	return nil
}

func (d *memDriver) DestroyTask(_ context.Context, id string, force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.task(id); err != nil {
		return err
	}
	if !force {
		return fmt.Errorf("destroy %s: task is running", id)
	}
	delete(d.tasks, id)
	return nil
}

func (d *memDriver) InspectTask(_ context.Context, id string) (*TaskStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.task(id)
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{"pid": strconv.Itoa(os.Getpid())}
	for k, v := range t.attrs {
		attrs[k] = v
	}
	st := &TaskStatus{ID: id, Name: t.cfg.TaskName, State: TaskStateRunning, StartedAt: memStartedAt, Attributes: attrs}
	if strings.HasSuffix(id, "/done") {
		st.State, st.CompletedAt = TaskStateExited, memStartedAt.Add(90*time.Second)
		st.ExitResult = &ExitResult{ExitCode: 1}
	}
	return st, nil
}

func (d *memDriver) SignalTask(_ context.Context, id string, signal string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.task(id)
	if err != nil {
		return err
	}
	t.attrs["last_signal"] = signal
	return nil
}

func (d *memDriver) TaskStats(_ context.Context, id string) (*TaskResourceUsage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.task(id); err != nil {
		return nil, err
	}
	child := &TaskResourceUsage{Timestamp: 11, CPU: CPUUsage{UserMode: 0.5}, Memory: MemoryUsage{RSS: 4096}}
	return &TaskResourceUsage{
		Timestamp: memStartedAt.UnixNano(),
		CPU: CPUUsage{SystemMode: 1.5, UserMode: 2.25, TotalTicks: 300, ThrottledPeriods: 4,
			ThrottledTime: 5, Percent: 12.5, Measured: []string{"System Mode", "User Mode"}},
		Memory: MemoryUsage{RSS: 1 << 20, Cache: 2, Swap: 3, Usage: 4, MaxUsage: 5, Measured: []string{"RSS"}},
		PIDs:   map[string]*TaskResourceUsage{"42": child},
	}, nil
}

// bigOutputSize is what the "big" exec command writes to stdout.
const bigOutputSize = 1 << 20

// bigOutput is a pattern no chunk boundary can hide a reordering in.
func bigOutput() []byte {
	b := make([]byte, bigOutputSize)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// ExecTask commands: "cat" copies stdin to stdout; "resize" (tty) prints
// the first terminal size it gets and exits 7; "big" writes bigOutput in
// uneven writes and "done" to stderr, and exits 3.
func (d *memDriver) ExecTask(ctx context.Context, id string, opts *ExecOptions) (int, error) {
	d.mu.Lock()
	_, err := d.task(id)
	d.mu.Unlock()
	if err != nil {
		return 0, err
	}
	switch opts.Command[0] {
	case "cat":
		if opts.Stdin == nil {
			_, err := io.WriteString(opts.Stdout, "no stdin")
			return 0, err
		}
		_, err := io.Copy(opts.Stdout, opts.Stdin)
		return 0, err
	case "resize":
		if !opts.Tty || opts.Resize == nil {
			return 0, errors.New("resize needs a tty")
		}
		select {
		case sz := <-opts.Resize:
			_, err := fmt.Fprintf(opts.Stdout, "%dx%d\n", sz.Height, sz.Width)
			return 7, err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	case "big":
		r := bytes.NewReader(bigOutput())
		buf := make([]byte, 100_003) // uneven, and larger than one chunk
		if _, err := io.CopyBuffer(struct{ io.Writer }{opts.Stdout}, struct{ io.Reader }{r}, buf); err != nil {
			return 0, err
		}
		_, err := io.WriteString(opts.Stderr, "done")
		return 3, err
	}
	return 0, fmt.Errorf("unknown command %q", opts.Command[0])
}
