package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func testTaskConfig(id string) *TaskConfig {
	alloc, task, _ := strings.Cut(id, "/")
	return &TaskConfig{
		ID: id, AllocID: alloc, TaskName: task, JobID: "web", TaskGroup: "frontend", Namespace: "default",
		Driver: "mem", DriverConfig: json.RawMessage(`{"image":"nginx:1.27","args":["-g","daemon off;"]}`),
		Env: map[string]string{"NOMAD_ALLOC_ID": alloc, "EMPTY": ""}, User: "nobody",
		Resources: Resources{CPUShares: 500, Cores: []uint16{0, 3}, MemoryMB: 256, MemoryMaxMB: 512, DiskMB: 300},
		AllocDir:  "/data/alloc/" + alloc, TaskDir: "/data/alloc/" + alloc + "/" + task, SharedDir: "/data/alloc/" + alloc + "/alloc",
		StdoutPath: "/data/alloc/" + alloc + "/alloc/logs/.web.stdout.fifo", StderrPath: "/data/alloc/" + alloc + "/alloc/logs/.web.stderr.fifo",
		NetworkNamespace: "/var/run/netns/" + alloc, Hostname: "web-1",
		Ports: []PortMapping{{Label: "http", Host: 25001, To: 80, HostIP: "127.0.0.1"}},
	}
}

// TestRoundTrip runs each method on a local memDriver and on one behind
// the plugin transport, and wants the same answers: whatever the agent
// sends reaches the driver (the memDriver echoes it back) and whatever the
// driver returns reaches the agent.
func TestRoundTrip(t *testing.T) {
	remote := startSupervisor(t, nil).Driver()
	local := newMemDriver()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := local.SetConfig(ctx, testPluginConfig); err != nil {
		t.Fatal(err)
	}

	const id = "8ba1c3f0-alloc/web"
	handle := &TaskHandle{Version: 5, Config: testTaskConfig("recovered-alloc/db"),
		State: json.RawMessage(`{"container":"c1","pid":77}`), StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))}
	cases := []struct {
		name string
		call func(d Driver) (any, error)
	}{
		{"Fingerprint", func(d Driver) (any, error) { return d.Fingerprint(ctx) }},
		{"Capabilities", func(d Driver) (any, error) { return d.Capabilities(ctx, "mem") }},
		{"CapabilitiesUnknown", func(d Driver) (any, error) { return d.Capabilities(ctx, "nope") }},
		{"ValidateTaskConfig", func(d Driver) (any, error) { return nil, d.ValidateTaskConfig(ctx, testTaskConfig(id)) }},
		{"ValidateTaskConfigInvalid", func(d Driver) (any, error) {
			cfg := testTaskConfig(id)
			cfg.DriverConfig = json.RawMessage(`{"command":"x"}`)
			return nil, d.ValidateTaskConfig(ctx, cfg)
		}},
		{"StartTask", func(d Driver) (any, error) { return d.StartTask(ctx, testTaskConfig(id)) }},
		{"StartTaskDone", func(d Driver) (any, error) { return d.StartTask(ctx, testTaskConfig("a2/done")) }},
		{"RecoverTask", func(d Driver) (any, error) { return nil, d.RecoverTask(ctx, handle) }},
		{"InspectRecovered", func(d Driver) (any, error) { return d.InspectTask(ctx, "recovered-alloc/db") }},
		{"WaitTask", func(d Driver) (any, error) { return d.WaitTask(ctx, id) }},
		{"StopTask", func(d Driver) (any, error) { return nil, d.StopTask(ctx, id, 2500*time.Millisecond, "SIGINT") }},
		{"SignalTask", func(d Driver) (any, error) { return nil, d.SignalTask(ctx, id, "SIGHUP") }},
		{"InspectTask", func(d Driver) (any, error) { return d.InspectTask(ctx, id) }},
		{"InspectExited", func(d Driver) (any, error) { return d.InspectTask(ctx, "a2/done") }},
		{"TaskStats", func(d Driver) (any, error) { return d.TaskStats(ctx, id) }},
		{"DestroyRunning", func(d Driver) (any, error) { return nil, d.DestroyTask(ctx, id, false) }},
		{"DestroyForce", func(d Driver) (any, error) { return nil, d.DestroyTask(ctx, id, true) }},
		{"InspectDestroyed", func(d Driver) (any, error) { return d.InspectTask(ctx, id) }},
	}
	// Attributes["pid"] says which process answered; it must differ.
	opts := cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreMapEntries(func(k, _ string) bool { return k == "pid" })}
	for _, tc := range cases {
		// Not parallel subtests: later cases read what earlier ones did.
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := tc.call(local)
			got, gotErr := tc.call(remote)
			if diff := cmp.Diff(want, got, opts); diff != "" {
				t.Errorf("result differs across the wire (-local +remote):\n%s", diff)
			}
			if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
				t.Errorf("error differs across the wire: local %v, remote %v", wantErr, gotErr)
			}
			if errors.Is(wantErr, ErrTaskNotFound) != errors.Is(gotErr, ErrTaskNotFound) {
				t.Errorf("errors.Is(ErrTaskNotFound) differs: local %v, remote %v", wantErr, gotErr)
			}
		})
	}

	// The config SetConfig carried reached the plugin whole.
	fps, err := remote.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantAttrs := map[string]string{"state_dir": testPluginConfig.StateDir, "extra": `{"k":"v"}`,
		"containerd_address": "/run/berth/containerd.sock", "mirrors": "http://127.0.0.1:5000,http://127.0.0.1:5001", "set_config_calls": "1"}
	if diff := cmp.Diff(wantAttrs, fps[0].Attributes, cmpopts.IgnoreMapEntries(func(k, _ string) bool { _, ok := wantAttrs[k]; return !ok })); diff != "" {
		t.Errorf("plugin config as the plugin saw it (-want +got):\n%s", diff)
	}
}

func TestTaskNotFoundCrossesTheWire(t *testing.T) {
	d := startSupervisor(t, nil).Driver()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"WaitTask":    func() error { _, err := d.WaitTask(ctx, "no/such"); return err },
		"StopTask":    func() error { return d.StopTask(ctx, "no/such", time.Second, "") },
		"DestroyTask": func() error { return d.DestroyTask(ctx, "no/such", true) },
		"InspectTask": func() error { _, err := d.InspectTask(ctx, "no/such"); return err },
		"SignalTask":  func() error { return d.SignalTask(ctx, "no/such", "SIGHUP") },
		"TaskStats":   func() error { _, err := d.TaskStats(ctx, "no/such"); return err },
		"RecoverTask": func() error {
			return d.RecoverTask(ctx, &TaskHandle{Config: testTaskConfig("gone/web"), State: json.RawMessage(`{"gone":true}`)})
		},
		"ExecTask": func() error {
			_, err := d.ExecTask(ctx, "no/such", &ExecOptions{Command: []string{"cat"}})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrTaskNotFound) {
				t.Fatalf("got %v, want an error wrapping ErrTaskNotFound", err)
			}
			if !strings.Contains(err.Error(), "no/such") && name != "RecoverTask" {
				t.Errorf("error %q lost the driver's message", err)
			}
		})
	}
}

func TestWaitTaskEndsWithContext(t *testing.T) {
	d := startSupervisor(t, nil).Driver()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const id = "a1/blocks"
	if _, err := d.StartTask(ctx, testTaskConfig(id)); err != nil {
		t.Fatal(err)
	}

	waitCtx, waitCancel := context.WithCancel(ctx)
	errCh := make(chan error, 1)
	go func() { _, err := d.WaitTask(waitCtx, id); errCh <- err }()
	select {
	case err := <-errCh:
		t.Fatalf("WaitTask returned before cancel: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	waitCancel()
	select {
	case err := <-errCh:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitTask did not return within 5s of cancel")
	}
	// The cancel reached the driver's context in the plugin process.
	waitFor(t, 5*time.Second, "the plugin to see the cancel", func() bool {
		st, err := d.InspectTask(ctx, id)
		return err == nil && st.Attributes["wait_ended"] == context.Canceled.Error()
	})

	deadlineCtx, deadlineCancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer deadlineCancel()
	if _, err := d.WaitTask(deadlineCtx, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestExecTask(t *testing.T) {
	d := startSupervisor(t, nil).Driver()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const id = "a1/web"
	if _, err := d.StartTask(ctx, testTaskConfig(id)); err != nil {
		t.Fatal(err)
	}

	t.Run("stdin to stdout", func(t *testing.T) {
		var stdout bytes.Buffer
		in := strings.Repeat("hello, plugin\n", 10_000) // several stdin chunks
		code, err := d.ExecTask(ctx, id, &ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader(in), Stdout: &stdout})
		if err != nil || code != 0 {
			t.Fatalf("exec: code %d, err %v", code, err)
		}
		if stdout.String() != in {
			t.Fatalf("stdout has %d bytes, want the %d sent on stdin", stdout.Len(), len(in))
		}
	})
	t.Run("no stdin", func(t *testing.T) {
		var stdout bytes.Buffer
		if _, err := d.ExecTask(ctx, id, &ExecOptions{Command: []string{"cat"}, Stdout: &stdout}); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "no stdin" {
			t.Fatalf("stdout %q: the driver should get a nil Stdin", stdout.String())
		}
	})
	t.Run("tty resize", func(t *testing.T) {
		var stdout bytes.Buffer
		resize := make(chan TerminalSize, 1)
		resize <- TerminalSize{Height: 51, Width: 193}
		code, err := d.ExecTask(ctx, id, &ExecOptions{Command: []string{"resize"}, Tty: true, Stdout: &stdout, Resize: resize})
		if err != nil {
			t.Fatal(err)
		}
		if code != 7 || stdout.String() != "51x193\n" {
			t.Fatalf("code %d stdout %q, want 7 and \"51x193\\n\"", code, stdout.String())
		}
	})
	t.Run("1 MiB output", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code, err := d.ExecTask(ctx, id, &ExecOptions{Command: []string{"big"}, Stdout: &stdout, Stderr: &stderr})
		if err != nil || code != 3 {
			t.Fatalf("exec: code %d, err %v", code, err)
		}
		if !bytes.Equal(stdout.Bytes(), bigOutput()) {
			t.Fatalf("stdout: %d bytes differ from the %d written", stdout.Len(), bigOutputSize)
		}
		if stderr.String() != "done" {
			t.Fatalf("stderr %q", stderr.String())
		}
	})
	t.Run("driver error", func(t *testing.T) {
		_, err := d.ExecTask(ctx, id, &ExecOptions{Command: []string{"resize"}})
		if err == nil || err.Error() != "resize needs a tty" {
			t.Fatalf("got %v, want the driver's error", err)
		}
	})
}
