package exec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
)

func TestRawExecDisabledByDefault(t *testing.T) {
	d := New(nil)
	ctx := testCtx(t)
	if err := d.SetConfig(ctx, &driver.PluginConfig{}); err != nil {
		t.Fatal(err)
	}
	fps, err := d.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var raw *driver.Fingerprint
	for _, fp := range fps {
		if fp.Name == NameRawExec {
			raw = fp
		}
	}
	if raw == nil || !raw.Detected || raw.Healthy || !strings.Contains(raw.HealthDescription, "enable raw_exec") {
		t.Fatalf("raw_exec fingerprint = %+v, want detected, unhealthy, telling how to enable it", raw)
	}
	tt := newTestTask(t, NameRawExec, "/bin/true")
	_, err = d.StartTask(ctx, tt.cfg)
	if !errors.Is(err, ErrRawExecDisabled) {
		t.Fatalf("StartTask with raw_exec disabled: err = %v, want ErrRawExecDisabled", err)
	}
}

func TestRawExecOutputAndExitCode(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	if got := tt.stdout.all(t); got != "out\n" {
		t.Errorf("stdout = %q, want %q", got, "out\n")
	}
	if got := tt.stderr.all(t); got != "err\n" {
		t.Errorf("stderr = %q, want %q", got, "err\n")
	}
	res := waitExit(t, d, tt.cfg.ID, 10*time.Second)
	if res.ExitCode != 3 || res.Signal != 0 || res.Err != "" {
		t.Fatalf("exit = %+v, want code 3", res)
	}
	st, err := d.InspectTask(testCtx(t), tt.cfg.ID)
	if err != nil || st.State != driver.TaskStateExited || st.ExitResult.ExitCode != 3 {
		t.Fatalf("inspect = %+v, %v; want exited with code 3", st, err)
	}
}

// Not parallel: t.Setenv proves the plugin's own env does not leak.
func TestRawExecEnvAndCwd(t *testing.T) {
	t.Setenv("BERTH_PLUGIN_SECRET", "leaked")
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "sh", "-c", `pwd; env`)
	tt.cfg.Env["GREETING"] = "hello world"
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	out := tt.stdout.all(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != tt.cfg.TaskDir {
		t.Errorf("cwd = %q, want the task dir %q", lines[0], tt.cfg.TaskDir)
	}
	for _, want := range []string{"GREETING=hello world", "BERTH_TEST=yes", "PATH=" + defaultPath} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("env lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "BERTH_PLUGIN_SECRET") {
		t.Errorf("the plugin's environment leaked into the task:\n%s", out)
	}
	if res := waitExit(t, d, tt.cfg.ID, 10*time.Second); !res.Successful() {
		t.Fatalf("exit = %+v", res)
	}
}

func TestRawExecUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sh", "-c", "id -u")
	tt.cfg.User = "nobody"
	// t.TempDir's directories are 0700: let nobody reach its cwd.
	for _, dir := range []string{tt.cfg.TaskDir, tt.cfg.AllocDir, filepath.Dir(tt.cfg.AllocDir)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(tt.stdout.all(t)); got != nobody.Uid {
		t.Fatalf("task ran as uid %q, want nobody's %q", got, nobody.Uid)
	}
}

func TestRawExecStopWithSIGTERM(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sleep", "30")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.StopTask(testCtx(t), tt.cfg.ID, 10*time.Second, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stop took %v: SIGTERM should end sleep at once", el)
	}
	res := waitExit(t, d, tt.cfg.ID, time.Second)
	if res.Signal != int(syscall.SIGTERM) {
		t.Fatalf("exit = %+v, want signal SIGTERM", res)
	}
}

func TestRawExecStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sh", "-c", "trap '' TERM; echo ready; sleep 30")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	tt.stdout.waitFor(t, "ready")
	const timeout = 500 * time.Millisecond
	start := time.Now()
	if err := d.StopTask(testCtx(t), tt.cfg.ID, timeout, ""); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if el < timeout || el > 5*time.Second {
		t.Errorf("stop took %v; want the %v timeout, then a prompt kill", el, timeout)
	}
	res := waitExit(t, d, tt.cfg.ID, time.Second)
	if res.Signal != int(syscall.SIGKILL) {
		t.Fatalf("exit = %+v, want SIGKILL", res)
	}
}

func TestRawExecStopReachesProcessGroup(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sh", "-c", "sleep 30 & echo child=$!; wait")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	tt.stdout.waitFor(t, "\n")
	childPID, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(tt.stdout.String(), "child=")))
	if err != nil {
		t.Fatalf("child pid from %q: %v", tt.stdout.String(), err)
	}
	child, err := readProcStat(childPID)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := d.TaskStats(testCtx(t), tt.cfg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stats.PIDs[strconv.Itoa(childPID)]; !ok || stats.Memory.RSS == 0 {
		t.Errorf("stats = %+v; want the child in PIDs and some RSS", stats)
	}
	if err := d.StopTask(testCtx(t), tt.cfg.ID, 5*time.Second, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	waitGone(t, childPID, child.StartTime)
}

func TestRawExecDestroy(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sleep", "30")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	if err := d.DestroyTask(testCtx(t), tt.cfg.ID, false); !errors.Is(err, ErrTaskRunning) {
		t.Fatalf("destroy running without force: err = %v, want ErrTaskRunning", err)
	}
	if err := d.DestroyTask(testCtx(t), tt.cfg.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitTask(testCtx(t), tt.cfg.ID); !errors.Is(err, driver.ErrTaskNotFound) {
		t.Fatalf("wait after destroy: err = %v, want ErrTaskNotFound", err)
	}
}

func TestRawExecSignal(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sh", "-c", "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	tt.stdout.waitFor(t, "ready")
	if err := d.SignalTask(testCtx(t), tt.cfg.ID, "SIGUSR1"); err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, d, tt.cfg.ID, 10*time.Second); res.ExitCode != 7 {
		t.Fatalf("exit = %+v, want 7 from the USR1 trap", res)
	}
	tt.stdout.waitFor(t, "got-usr1")
	if err := d.SignalTask(testCtx(t), tt.cfg.ID, "NOPE"); err == nil {
		t.Fatal("signal NOPE accepted")
	}
}

func TestRawExecExecWithoutTTY(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sleep", "30")
	tt.cfg.Env["GREETING"] = "hi"
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code, err := d.ExecTask(testCtx(t), tt.cfg.ID, &driver.ExecOptions{
		Command: []string{"sh", "-c", `read x; echo "$GREETING $x $(pwd)"; echo oops >&2; exit 4`},
		Stdin:   strings.NewReader("there\n"),
		Stdout:  &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 4 {
		t.Errorf("exit code = %d, want 4", code)
	}
	if want := "hi there " + tt.cfg.TaskDir + "\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if stderr.String() != "oops\n" {
		t.Errorf("stderr = %q, want %q", stderr.String(), "oops\n")
	}
}

func TestRawExecExecWithTTY(t *testing.T) {
	t.Parallel()
	d := newRawExecDriver(t)
	tt := newTestTask(t, NameRawExec, "/bin/sleep", "30")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	resize := make(chan driver.TerminalSize)
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var out syncBuffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The shell waits for the resize to land (bounded), then reports.
		code, err := d.ExecTask(testCtx(t), tt.cfg.ID, &driver.ExecOptions{
			Command: []string{"/bin/sh", "-c", `tty; i=0; while [ "$(stty size)" != "40 100" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; echo size=$(stty size); exit 5`},
			Tty:     true, Stdin: stdinR, Stdout: &out, Resize: resize,
		})
		done <- result{code, err}
	}()
	select {
	case resize <- driver.TerminalSize{Height: 40, Width: 100}:
	case <-time.After(10 * time.Second):
		t.Fatal("exec did not take the resize")
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("exec with tty did not end")
	}
	if r.err != nil || r.code != 5 {
		t.Fatalf("exec = %d, %v; want 5", r.code, r.err)
	}
	got := out.String()
	if !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "size=40 100") {
		t.Fatalf("tty output = %q; want a /dev/pts tty resized to 40x100", got)
	}
}

func TestValidateTaskConfig(t *testing.T) {
	t.Parallel()
	d := New(nil)
	for _, tc := range []struct {
		driverName, config string
		ok                 bool
	}{
		{NameRawExec, `{"command":"/bin/true","args":["a"]}`, true},
		{NameRawExec, `{"args":["a"]}`, false},
		{NameRawExec, `{"command":"x","comand":"y"}`, false},
		{NameRawExec, `{"command":"x","cap_add":["NET_RAW"]}`, false},
		{NameExec, `{"command":"x","cap_add":["net_raw"],"cap_drop":["ALL"]}`, true},
		{NameExec, `{"command":"x","cap_add":["NOT_A_CAP"]}`, false},
		{"docker", `{"command":"x"}`, false},
	} {
		err := d.ValidateTaskConfig(context.Background(), &driver.TaskConfig{Driver: tc.driverName, DriverConfig: []byte(tc.config)})
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: err = %v, want ok=%v", tc.driverName, tc.config, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s %s: err = %v, want ErrInvalidConfig", tc.driverName, tc.config, err)
		}
	}
}
