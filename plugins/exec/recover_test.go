package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"testing"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
)

// startHelperEnv makes the test binary act as a short-lived plugin
// process: it starts the raw_exec task given as JSON on stdin, prints the
// handle and exits, so the task is left without its parent, as when the
// agent's plugin dies.
const startHelperEnv = "BERTH_EXEC_TEST_START_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(startHelperEnv) == "1" {
		os.Exit(runStartHelper())
	}
	os.Exit(m.Run())
}

func runStartHelper() int {
	var cfg driver.TaskConfig
	if err := json.NewDecoder(os.Stdin).Decode(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "helper: decode task config:", err)
		return 2
	}
	d := New(nil)
	ctx := context.Background()
	if err := d.SetConfig(ctx, &driver.PluginConfig{RawExecEnabled: true}); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	h, err := d.StartTask(ctx, &cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	if err := json.NewEncoder(os.Stdout).Encode(h); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	return 0
}

// startInOtherProcess starts cfg from a helper process that exits
// before this returns.
func startInOtherProcess(t *testing.T, cfg *driver.TaskConfig) *driver.TaskHandle {
	t.Helper()
	in, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), startHelperEnv+"=1")
	cmd.Stdin = bytesReader(in)
	cmd.Stderr = testWriter{t}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper plugin process: %v", err)
	}
	var h driver.TaskHandle
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	st, err := decodeHandleState(h.State)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = killGroupIfSame(st.PID, st.StartTime) })
	return &h
}

// killGroupIfSame ends a leftover task group, if it is still the task's.
func killGroupIfSame(pid int, startTime uint64) error {
	if !processAlive(pid, startTime) {
		return nil
	}
	return killGroup(pid)
}

func TestRawExecRecoverAfterPluginDied(t *testing.T) {
	t.Parallel()
	tt := newTestTask(t, NameRawExec, "/bin/sh", "-c", "echo started; sleep 30")
	h := startInOtherProcess(t, tt.cfg)
	tt.stdout.waitFor(t, "started")

	d := newRawExecDriver(t)
	ctx := testCtx(t)
	if err := d.RecoverTask(ctx, h); err != nil {
		t.Fatalf("recover: %v", err)
	}
	st, err := d.InspectTask(ctx, tt.cfg.ID)
	if err != nil || st.State != driver.TaskStateRunning {
		t.Fatalf("inspect recovered task = %+v, %v; want running", st, err)
	}
	if _, err := d.TaskStats(ctx, tt.cfg.ID); err != nil {
		t.Fatalf("stats of recovered task: %v", err)
	}
	waited := make(chan *driver.ExitResult, 1)
	go func() {
		res, err := d.WaitTask(ctx, tt.cfg.ID)
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		waited <- res
	}()
	select {
	case res := <-waited:
		t.Fatalf("wait returned %+v while the task runs", res)
	case <-time.After(100 * time.Millisecond):
	}
	if err := d.StopTask(ctx, tt.cfg.ID, 5*time.Second, "SIGTERM"); err != nil {
		t.Fatalf("stop recovered task: %v", err)
	}
	select {
	case res := <-waited:
		if res == nil || res.Err != ExitUnknown || res.Successful() {
			t.Fatalf("exit of recovered task = %+v, want Err %q", res, ExitUnknown)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after the recovered task was stopped")
	}
	// Output flowed straight from the task to the FIFO: EOF once it died.
	if got := tt.stdout.all(t); got != "started\n" {
		t.Errorf("stdout = %q", got)
	}
}

func TestRawExecRecoverRejectsReusedPID(t *testing.T) {
	t.Parallel()
	tt := newTestTask(t, NameRawExec, "/bin/sleep", "30")
	h := startInOtherProcess(t, tt.cfg)
	st, err := decodeHandleState(h.State)
	if err != nil {
		t.Fatal(err)
	}
	// The same pid with another start time is what a reused pid looks like.
	st.StartTime++
	forged := *h
	if forged.State, err = encodeHandleState(*st); err != nil {
		t.Fatal(err)
	}
	d := newRawExecDriver(t)
	if err := d.RecoverTask(testCtx(t), &forged); !errors.Is(err, driver.ErrTaskNotFound) {
		t.Fatalf("recover with mismatched start time: err = %v, want ErrTaskNotFound", err)
	}
	// The genuine handle still recovers.
	if err := d.RecoverTask(testCtx(t), h); err != nil {
		t.Fatalf("recover genuine handle: %v", err)
	}
}

func TestRawExecRecoverExitedTask(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/true")
	h, err := d.StartTask(testCtx(t), tt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, tt.cfg.ID, 10*time.Second) // reaped: the pid is free
	other := newRawExecDriver(t)
	if err := other.RecoverTask(testCtx(t), h); !errors.Is(err, driver.ErrTaskNotFound) {
		t.Fatalf("recover of a reaped task: err = %v, want ErrTaskNotFound", err)
	}
}
