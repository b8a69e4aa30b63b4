package exec

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/plugins/driver"
)

func newExecDriver(t *testing.T, h *containerdtest.Harness) *Driver {
	t.Helper()
	d := New(slog.New(slog.NewTextHandler(testWriter{t}, nil))).(*Driver)
	err := d.SetConfig(context.Background(), &driver.PluginConfig{
		Containerd: &driver.ContainerdConfig{Address: h.Address, Namespace: h.Namespace},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		destroyAll(t, d)
		d.mu.Lock()
		if d.isoBox != nil {
			d.isoBox.close()
		}
		d.mu.Unlock()
	})
	return d
}

func fingerprintOf(t *testing.T, d driver.Driver, name string) *driver.Fingerprint {
	t.Helper()
	fps, err := d.Fingerprint(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, fp := range fps {
		if fp.Name == name {
			return fp
		}
	}
	t.Fatalf("no fingerprint for %s in %+v", name, fps)
	return nil
}

func TestExecRunsInChrootAndPidNamespace(t *testing.T) {
	h := containerdtest.Start(t)
	d := newExecDriver(t, h)
	if fp := fingerprintOf(t, d, NameExec); !fp.Detected || !fp.Healthy {
		t.Fatalf("exec fingerprint with containerd up = %+v", fp)
	}
	tt := newTestTask(t, NameExec, "/bin/sh", "-c", `ls -a /; echo "pid1=$(tr '\0' ' ' </proc/1/cmdline)"; echo "self=$$"; exit 3`)
	if err := os.WriteFile(tt.cfg.TaskDir+"/local/marker", []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := d.StartTask(ctx, tt.cfg); err != nil {
		t.Fatal(err)
	}
	res := waitExit(t, d, tt.cfg.ID, 30*time.Second)
	out := tt.stdout.all(t)
	if res.ExitCode != 3 {
		t.Errorf("exit = %+v, want code 3; stdout %q, stderr %q", res, out, tt.stderr.String())
	}
	entries := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		entries[l] = true
	}
	for _, want := range []string{"alloc", "local", "secrets", "usr", "etc", "bin", "proc", "self=1"} {
		if !entries[want] {
			t.Errorf("output lacks line %q:\n%s", want, out)
		}
	}
	// PID 1 of the task's pid namespace is the task's own shell.
	if !strings.Contains(out, "\npid1=/bin/sh -c ls -a /;") {
		t.Errorf("PID 1 is not the task:\n%s", out)
	}
	// Host paths outside the chroot env stay invisible.
	for _, hidden := range []string{"root", "work", "home", rootfsDirName} {
		if entries[hidden] {
			t.Errorf("/%s is visible in the chroot:\n%s", hidden, out)
		}
	}

	if err := d.DestroyTask(ctx, tt.cfg.ID, false); err != nil {
		t.Fatalf("destroy exited task: %v", err)
	}
	ctrs, err := h.Client().Containers(h.Context(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 {
		t.Fatalf("destroy left %d containers", len(ctrs))
	}
	if _, err := os.Stat(tt.cfg.TaskDir + "/" + rootfsDirName); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rootfs skeleton left behind: %v", err)
	}
	if b, err := os.ReadFile(tt.cfg.TaskDir + "/local/marker"); err != nil || string(b) != "m" {
		t.Errorf("task dir content harmed by destroy: %q, %v", b, err)
	}
}

func TestExecStopRecoverAndExec(t *testing.T) {
	h := containerdtest.Start(t)
	d := newExecDriver(t, h)
	// The shell is PID 1 of its namespace, which has no default signal
	// actions: it handles TERM itself, as an init must.
	tt := newTestTask(t, NameExec, "/bin/true")
	tt.cfg.DriverConfig = []byte(`{"command":"/bin/sh","args":["-c","trap 'exit 143' TERM; grep CapEff /proc/self/status; sleep 30 & wait"],"cap_drop":["ALL"]}`)
	ctx := testCtx(t)
	handle, err := d.StartTask(ctx, tt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tt.stdout.waitFor(t, "CapEff")
	if !strings.Contains(tt.stdout.String(), "CapEff:\t0000000000000000") {
		t.Errorf("cap_drop ALL left capabilities: %q", tt.stdout.String())
	}

	// A second plugin instance takes the task over from its handle.
	other := newExecDriver(t, h)
	if err := other.RecoverTask(ctx, handle); err != nil {
		t.Fatalf("recover exec task: %v", err)
	}
	var stdout, stderr bytes.Buffer
	code, err := other.ExecTask(ctx, tt.cfg.ID, &driver.ExecOptions{
		Command: []string{"/bin/sh", "-c", `echo "$BERTH_TEST"; ls /local >/dev/null && echo local-ok; exit 2`},
		Stdout:  &stdout, Stderr: &stderr,
	})
	if err != nil || code != 2 {
		t.Fatalf("exec = %d, %v; want 2 (stderr %q)", code, err, stderr.String())
	}
	if stdout.String() != "yes\nlocal-ok\n" {
		t.Errorf("exec stdout = %q", stdout.String())
	}
	if err := other.DestroyTask(ctx, tt.cfg.ID, false); !errors.Is(err, ErrTaskRunning) {
		t.Fatalf("destroy running exec task without force: %v, want ErrTaskRunning", err)
	}
	if err := other.StopTask(ctx, tt.cfg.ID, 10*time.Second, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	res := waitExit(t, other, tt.cfg.ID, 10*time.Second)
	if res.ExitCode != 143 || res.Signal != 15 {
		t.Errorf("exit after SIGTERM = %+v, want the trap's 143", res)
	}
	if err := other.DestroyTask(ctx, tt.cfg.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := other.RecoverTask(ctx, handle); !errors.Is(err, driver.ErrTaskNotFound) {
		t.Fatalf("recover of a destroyed task: err = %v, want ErrTaskNotFound", err)
	}
}

func TestExecFingerprintWithoutContainerd(t *testing.T) {
	t.Parallel()
	d := New(nil)
	if err := d.SetConfig(testCtx(t), &driver.PluginConfig{}); err != nil {
		t.Fatal(err)
	}
	if fp := fingerprintOf(t, d, NameExec); fp.Detected || fp.Healthy || fp.HealthDescription == "" {
		t.Errorf("exec fingerprint without containerd config = %+v; want undetected with a reason", fp)
	}
	err := d.SetConfig(testCtx(t), &driver.PluginConfig{
		Containerd: &driver.ContainerdConfig{Address: t.TempDir() + "/no.sock", Namespace: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fp := fingerprintOf(t, d, NameExec)
	if fp.Detected || fp.Healthy || fp.HealthDescription == "" {
		t.Errorf("exec fingerprint with unreachable containerd = %+v; want undetected with a reason", fp)
	}
	if el := time.Since(start); el > 2*fingerprintTimeout {
		t.Errorf("fingerprint took %v", el)
	}
	tt := newTestTask(t, NameExec, "/bin/true")
	if _, err := d.StartTask(testCtx(t), tt.cfg); err == nil {
		t.Fatal("exec task started without containerd")
	}
}

func TestExecRunsAsUser(t *testing.T) {
	h := containerdtest.Start(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	d := newExecDriver(t, h)
	tt := newTestTask(t, NameExec, "/bin/sh", "-c", "id -u; id -g")
	tt.cfg.User = "nobody"
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	if res := waitExit(t, d, tt.cfg.ID, 30*time.Second); !res.Successful() {
		t.Fatalf("exit = %+v, stderr %q", res, tt.stderr.String())
	}
	if got, want := tt.stdout.all(t), nobody.Uid+"\n"+nobody.Gid+"\n"; got != want {
		t.Fatalf("ran as %q, want nobody's %q", got, want)
	}
}
