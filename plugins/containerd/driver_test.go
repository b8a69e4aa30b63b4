package containerd_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"

	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/plugins/containerd"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/ctrtask"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// fixture is one private containerd, one registry holding the test image,
// and a configured driver.
type fixture struct {
	h     *containerdtest.Harness
	reg   *containerdtest.RegistryServer
	image string
	pcfg  *driver.PluginConfig
	d     driver.Driver
	ctx   context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	h := containerdtest.Start(t)
	reg := containerdtest.Registry(t)
	image := containerdtest.BuildTestImage(t, reg, "berth/testapp", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	f := &fixture{h: h, reg: reg, image: image, ctx: ctx}
	f.pcfg = &driver.PluginConfig{
		StateDir: t.TempDir(),
		Containerd: &driver.ContainerdConfig{
			Address: h.Address, Namespace: h.Namespace,
			InsecureRegistries: []string{reg.Host},
		},
	}
	f.d = f.newDriver(t)
	return f
}

func (f *fixture) newDriver(t *testing.T) driver.Driver {
	t.Helper()
	d := containerd.New(slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err := d.SetConfig(f.ctx, f.pcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.(interface{ Close() error }).Close() })
	return d
}

type started struct {
	cfg    *driver.TaskConfig
	handle *driver.TaskHandle
	stdout *containerdtest.FIFO
	stderr *containerdtest.FIFO
}

// taskConfig makes a docker-driver task running the test image with args.
func (f *fixture) taskConfig(t *testing.T, name string, dcfg map[string]any) (*driver.TaskConfig, *containerdtest.FIFO, *containerdtest.FIFO) {
	t.Helper()
	if _, ok := dcfg["image"]; !ok {
		dcfg["image"] = f.image
	}
	raw, err := json.Marshal(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	allocDir := t.TempDir()
	taskDir := filepath.Join(allocDir, name)
	for _, d := range []string{"alloc", name + "/local", name + "/secrets"} {
		if err := os.MkdirAll(filepath.Join(allocDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, errf := containerdtest.NewFIFO(t, "stdout"), containerdtest.NewFIFO(t, "stderr")
	return &driver.TaskConfig{
		ID:      "alloc-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "/" + name,
		AllocID: "alloc", TaskName: name, JobID: "job", Driver: "docker",
		DriverConfig: raw,
		Env:          map[string]string{"BERTH_TASK": name},
		AllocDir:     allocDir, TaskDir: taskDir, SharedDir: filepath.Join(allocDir, "alloc"),
		StdoutPath: out.Path, StderrPath: errf.Path,
		Resources: driver.Resources{CPUShares: 250, MemoryMB: 64},
	}, out, errf
}

func (f *fixture) start(t *testing.T, name string, dcfg map[string]any) *started {
	t.Helper()
	cfg, out, errf := f.taskConfig(t, name, dcfg)
	begin := time.Now()
	h, err := f.d.StartTask(f.ctx, cfg)
	if err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	t.Logf("StartTask took %s", time.Since(begin))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.d.DestroyTask(ctx, cfg.ID, true); err != nil && !errors.Is(err, driver.ErrTaskNotFound) {
			t.Errorf("cleanup DestroyTask: %v", err)
		}
	})
	return &started{cfg: cfg, handle: h, stdout: out, stderr: errf}
}

func (f *fixture) wait(t *testing.T, id string) *driver.ExitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	res, err := f.d.WaitTask(ctx, id)
	if err != nil {
		t.Fatalf("WaitTask: %v", err)
	}
	return res
}

func args(a ...string) map[string]any { return map[string]any{"args": a} }

func TestDriver(t *testing.T) {
	f := newFixture(t)

	t.Run("fingerprint", func(t *testing.T) {
		fps, err := f.d.Fingerprint(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, fp := range fps {
			names[fp.Name] = true
			if !fp.Detected || !fp.Healthy || fp.Attributes["driver."+fp.Name+".version"] == "" {
				t.Errorf("fingerprint %+v: want detected, healthy, with a version", fp)
			}
		}
		if !names["docker"] || !names["containerd"] {
			t.Errorf("fingerprinted names %v, want docker and containerd", names)
		}
	})

	t.Run("exit codes and output", func(t *testing.T) {
		ok := f.start(t, "ok", args("print", "to-stdout", "to-stderr"))
		if res := f.wait(t, ok.cfg.ID); !res.Successful() {
			t.Fatalf("exit %+v, want success", res)
		}
		if got := ok.stdout.WaitClosed(t, 10*time.Second); got != "to-stdout\n" {
			t.Errorf("stdout %q", got)
		}
		if got := ok.stderr.WaitClosed(t, 10*time.Second); got != "to-stderr\n" {
			t.Errorf("stderr %q", got)
		}
		three := f.start(t, "three", args("exit", "3"))
		if res := f.wait(t, three.cfg.ID); res.ExitCode != 3 || res.Successful() {
			t.Fatalf("exit %+v, want code 3", res)
		}
		st, err := f.d.InspectTask(f.ctx, three.cfg.ID)
		if err != nil || st.State != driver.TaskStateExited || st.ExitResult.ExitCode != 3 {
			t.Fatalf("inspect %+v, %v", st, err)
		}
	})

	t.Run("env mounts workdir hostname", func(t *testing.T) {
		s := f.start(t, "env", map[string]any{
			"args":     []string{"env", "ls", "/alloc", "write", "/local/out", "written", "hostname"},
			"work_dir": "/tmp", "hostname": "berth-box",
			"volumes": []string{"local:/vol:ro"},
		})
		if err := os.WriteFile(filepath.Join(s.cfg.SharedDir, "shared-file"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if res := f.wait(t, s.cfg.ID); !res.Successful() {
			t.Fatalf("exit %+v stderr %q", res, s.stderr.String())
		}
		out := s.stdout.WaitClosed(t, 10*time.Second)
		for _, want := range []string{"BERTH_TASK=env", "TESTAPP_IMAGE=1", "berth-box"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout %q lacks %q", out, want)
			}
		}
		b, err := os.ReadFile(filepath.Join(s.cfg.TaskDir, "local", "out"))
		if err != nil || string(b) != "written" {
			t.Errorf("/local/out on host: %q, %v", b, err)
		}
	})

	t.Run("network none dns servers user", func(t *testing.T) {
		cfg, out, errf := f.taskConfig(t, "netnone", map[string]any{
			"args":         []string{"ls", "/sys/class/net", "read", "/etc/resolv.conf", "write", "/tmp/by-nobody", "x"},
			"network_mode": "none", "dns_servers": []string{"192.0.2.53"},
		})
		cfg.User = "nobody"
		if _, err := f.d.StartTask(f.ctx, cfg); err != nil {
			t.Fatal(err)
		}
		defer f.d.DestroyTask(f.ctx, cfg.ID, true)
		if res := f.wait(t, cfg.ID); !res.Successful() {
			t.Fatalf("exit %+v stderr %q", res, errf.String())
		}
		if got := out.WaitClosed(t, 10*time.Second); got != "lo\nnameserver 192.0.2.53\n" {
			t.Fatalf("stdout %q, want only lo and the configured nameserver", got)
		}
	})

	t.Run("read-only rootfs and ro volume", func(t *testing.T) {
		s := f.start(t, "ro", map[string]any{"args": []string{"write", "/tmp/x", "y"}, "readonly_rootfs": true})
		if res := f.wait(t, s.cfg.ID); res.ExitCode != 2 {
			t.Fatalf("write on read-only rootfs: exit %+v, want 2", res)
		}
		v := f.start(t, "rovol", map[string]any{"args": []string{"write", "/vol/x", "y"}, "volumes": []string{"local:/vol:ro"}})
		if res := f.wait(t, v.cfg.ID); res.ExitCode != 2 {
			t.Fatalf("write on ro volume: exit %+v, want 2", res)
		}
	})

	t.Run("stop delivers signal", func(t *testing.T) {
		s := f.start(t, "trap", args("trap"))
		s.stdout.WaitFor(t, "trapping", 10*time.Second)
		if err := f.d.SignalTask(f.ctx, s.cfg.ID, "SIGHUP"); err != nil {
			t.Fatal(err)
		}
		s.stdout.WaitFor(t, "SIGHUP", 10*time.Second)
		if err := f.d.StopTask(f.ctx, s.cfg.ID, 10*time.Second, ""); err != nil {
			t.Fatal(err)
		}
		if res := f.wait(t, s.cfg.ID); !res.Successful() {
			t.Fatalf("exit %+v, want 0 after SIGTERM", res)
		}
		s.stdout.WaitFor(t, "terminated", 5*time.Second)
	})

	t.Run("stop kills after timeout", func(t *testing.T) {
		s := f.start(t, "sleep", args("ignore", "print", "ignoring", "-", "sleep", "1h"))
		s.stdout.WaitFor(t, "ignoring", 10*time.Second)
		begin := time.Now()
		if err := f.d.StopTask(f.ctx, s.cfg.ID, 500*time.Millisecond, "SIGTERM"); err != nil {
			t.Fatal(err)
		}
		res := f.wait(t, s.cfg.ID)
		if res.Signal != 9 || time.Since(begin) < 500*time.Millisecond {
			t.Fatalf("exit %+v after %s, want SIGKILL after the timeout", res, time.Since(begin))
		}
	})

	t.Run("cgroup limits", func(t *testing.T) {
		cfg, _, _ := f.taskConfig(t, "limits", args("sleep", "1h"))
		cfg.Resources = driver.Resources{CPUShares: 300, MemoryMB: 48, MemoryMaxMB: 96}
		if _, err := f.d.StartTask(f.ctx, cfg); err != nil {
			t.Fatal(err)
		}
		defer f.d.DestroyTask(f.ctx, cfg.ID, true)
		dir := filepath.Join("/sys/fs/cgroup/memory", f.h.Namespace, ctrtask.ContainerID(cfg.ID))
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("no cgroup v1 memory hierarchy here: %v", err)
		}
		assertCgroup(t, filepath.Join(dir, "memory.limit_in_bytes"), 96<<20)
		assertCgroup(t, filepath.Join(dir, "memory.soft_limit_in_bytes"), 48<<20)
		assertCgroup(t, filepath.Join("/sys/fs/cgroup/cpu", f.h.Namespace, ctrtask.ContainerID(cfg.ID), "cpu.shares"), 300)
	})

	t.Run("stats", func(t *testing.T) {
		s := f.start(t, "stats", args("alloc", "20", "print", "allocated", "-", "sleep", "1h"))
		s.stdout.WaitFor(t, "allocated", 10*time.Second)
		u, err := f.d.TaskStats(f.ctx, s.cfg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Memory.Usage < 20<<20 || u.Memory.RSS == 0 || u.Timestamp == 0 {
			t.Fatalf("stats %+v: want usage >= 20 MiB", u.Memory)
		}
	})

	t.Run("exec", func(t *testing.T) {
		s := f.start(t, "exec", args("sleep", "1h"))
		var out, errb strings.Builder
		code, err := f.d.ExecTask(f.ctx, s.cfg.ID, &driver.ExecOptions{
			Command: []string{"/testapp", "cat", "print", "o", "e", "exit", "5"},
			Stdin:   strings.NewReader("from stdin\n"), Stdout: &out, Stderr: &errb,
		})
		if err != nil || code != 5 {
			t.Fatalf("exec: code %d, %v", code, err)
		}
		if out.String() != "from stdin\no\n" || errb.String() != "e\n" {
			t.Fatalf("exec output %q / %q", out.String(), errb.String())
		}
		var tty strings.Builder
		resize := make(chan driver.TerminalSize, 1)
		resize <- driver.TerminalSize{Height: 40, Width: 100}
		code, err = f.d.ExecTask(f.ctx, s.cfg.ID, &driver.ExecOptions{
			Command: []string{"/testapp", "print", "tty-out", "tty-err", "exit", "4"},
			Tty:     true, Stdout: &tty, Resize: resize,
		})
		if err != nil || code != 4 {
			t.Fatalf("tty exec: code %d, %v", code, err)
		}
		if !strings.Contains(tty.String(), "tty-out") || !strings.Contains(tty.String(), "tty-err") {
			t.Fatalf("tty output %q", tty.String())
		}
	})

	t.Run("recover after plugin restart", func(t *testing.T) {
		s := f.start(t, "recover", args("trap"))
		s.stdout.WaitFor(t, "trapping", 10*time.Second)
		// A second driver is what a relaunched plugin process is.
		d2 := f.newDriver(t)
		if err := d2.RecoverTask(f.ctx, s.handle); err != nil {
			t.Fatal(err)
		}
		st, err := d2.InspectTask(f.ctx, s.cfg.ID)
		if err != nil || st.State != driver.TaskStateRunning {
			t.Fatalf("inspect after recover: %+v, %v", st, err)
		}
		if err := d2.SignalTask(f.ctx, s.cfg.ID, "SIGUSR1"); err != nil {
			t.Fatal(err)
		}
		s.stdout.WaitFor(t, "SIGUSR1", 10*time.Second) // output still flows
		if err := d2.StopTask(f.ctx, s.cfg.ID, 10*time.Second, "SIGTERM"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
		defer cancel()
		res, err := d2.WaitTask(ctx, s.cfg.ID)
		if err != nil || !res.Successful() {
			t.Fatalf("wait after recover: %+v, %v", res, err)
		}
		if err := d2.DestroyTask(f.ctx, s.cfg.ID, false); err != nil {
			t.Fatal(err)
		}
		gone := &driver.TaskHandle{Config: &driver.TaskConfig{ID: "nope/none"}}
		if err := d2.RecoverTask(f.ctx, gone); !errors.Is(err, driver.ErrTaskNotFound) {
			t.Fatalf("recover unknown: %v, want ErrTaskNotFound", err)
		}
	})

	t.Run("destroy leaves nothing", func(t *testing.T) {
		s := f.start(t, "destroy", args("sleep", "1h"))
		if err := f.d.DestroyTask(f.ctx, s.cfg.ID, false); err == nil {
			t.Fatal("destroying a running task without force must fail")
		}
		if err := f.d.DestroyTask(f.ctx, s.cfg.ID, true); err != nil {
			t.Fatal(err)
		}
		assertGone(t, f, ctrtask.ContainerID(s.cfg.ID))
		if _, err := f.d.InspectTask(f.ctx, s.cfg.ID); !errors.Is(err, driver.ErrTaskNotFound) {
			t.Fatalf("inspect after destroy: %v", err)
		}
	})

	t.Run("unknown task", func(t *testing.T) {
		for name, err := range map[string]error{
			"wait":    func() error { _, err := f.d.WaitTask(f.ctx, "x/y"); return err }(),
			"stop":    f.d.StopTask(f.ctx, "x/y", time.Second, ""),
			"destroy": f.d.DestroyTask(f.ctx, "x/y", true),
			"signal":  f.d.SignalTask(f.ctx, "x/y", "SIGHUP"),
		} {
			if !errors.Is(err, driver.ErrTaskNotFound) {
				t.Errorf("%s: %v, want ErrTaskNotFound", name, err)
			}
		}
	})
}

func assertCgroup(t *testing.T, path string, want int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || got != want {
		t.Errorf("%s = %q, want %d", path, b, want)
	}
}

// assertGone checks that no container, task, snapshot or mount of cid is
// left.
func assertGone(t *testing.T, f *fixture, cid string) {
	t.Helper()
	c := f.h.Client()
	ctx := f.h.Context(f.ctx)
	if _, err := c.LoadContainer(ctx, cid); err == nil {
		t.Errorf("container %s still exists", cid)
	}
	tasks, err := c.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks.Tasks {
		if tk.ID == cid {
			t.Errorf("task %s still exists", cid)
		}
	}
	if _, err := c.SnapshotService("overlayfs").Stat(ctx, cid); err == nil {
		t.Errorf("snapshot %s still exists", cid)
	}
	mounts, err := containerdtest.MountsContaining(cid)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) > 0 {
		t.Errorf("mounts left for %s: %q", cid, mounts)
	}
}
