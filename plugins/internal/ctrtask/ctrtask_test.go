package ctrtask_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/oci"

	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/ctrtask"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

type env struct {
	h   *containerdtest.Harness
	rt  *ctrtask.Runtime
	ctx context.Context
}

func setup(t *testing.T) *env {
	t.Helper()
	h := containerdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	rt, err := ctrtask.Connect(ctx, &driver.ContainerdConfig{Address: h.Address, Namespace: h.Namespace},
		slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return &env{h: h, rt: rt, ctx: ctx}
}

func (e *env) taskConfig(t *testing.T, id string) (*driver.TaskConfig, *containerdtest.FIFO) {
	out := containerdtest.NewFIFO(t, "stdout")
	return &driver.TaskConfig{
		ID: id, AllocID: "a1", TaskName: "web", Driver: "test",
		Env:        map[string]string{"GREETING": "hello"},
		StdoutPath: out.Path,
		Resources:  driver.Resources{MemoryMB: 64},
	}, out
}

func TestImageTask(t *testing.T) {
	e := setup(t)
	img := e.h.ImportTestImage(t, "docker.io/berth/testapp:latest", "")

	t.Run("concurrent waiters", func(t *testing.T) {
		cfg, out := e.taskConfig(t, "alloc1/web")
		_, err := e.rt.Start(e.ctx, cfg, ctrtask.CreateOptions{Image: img,
			SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "env", "sleep", "200ms", "exit", "7")}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		codes := make([]int, 3)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.rt.Wait(e.ctx, cfg.ID)
				if err != nil {
					t.Error(err)
					return
				}
				codes[i] = res.ExitCode
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != 7 {
				t.Errorf("waiter %d saw exit %d, want 7", i, c)
			}
		}
		if got := out.WaitClosed(t, 10*time.Second); !strings.Contains(got, "GREETING=hello") {
			t.Errorf("env output %q lacks GREETING", got)
		}
		if err := e.rt.Destroy(e.ctx, cfg.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rt.Wait(e.ctx, cfg.ID); !errors.Is(err, driver.ErrTaskNotFound) {
			t.Fatalf("wait after destroy: %v, want ErrTaskNotFound", err)
		}
	})

	t.Run("oom kill is reported", func(t *testing.T) {
		cfg, _ := e.taskConfig(t, "alloc2/hog")
		cfg.Resources.MemoryMB = 16
		_, err := e.rt.Start(e.ctx, cfg, ctrtask.CreateOptions{Image: img,
			SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "alloc", "200", "sleep", "1h")}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.rt.Destroy(e.ctx, cfg.ID, true)
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		defer cancel()
		res, err := e.rt.Wait(ctx, cfg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OOMKilled || res.Signal != 9 {
			t.Fatalf("exit %+v, want OOM kill", res)
		}
	})

	t.Run("wait honours ctx", func(t *testing.T) {
		cfg, _ := e.taskConfig(t, "alloc3/long")
		_, err := e.rt.Start(e.ctx, cfg, ctrtask.CreateOptions{Image: img,
			SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "sleep", "1h")}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.rt.Destroy(e.ctx, cfg.ID, true)
		ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := e.rt.Wait(ctx, cfg.ID); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("wait: %v, want deadline exceeded", err)
		}
		// a SIGKILL that is not the OOM killer's is not reported as one
		if err := e.rt.Signal(e.ctx, cfg.ID, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
		if res, err := e.rt.Wait(e.ctx, cfg.ID); err != nil || res.Signal != 9 || res.OOMKilled {
			t.Fatalf("killed: %+v, %v; want SIGKILL, not OOM", res, err)
		}
	})
}

// TestRootfsPathTask runs a task whose rootfs is a plain host directory,
// as the exec driver does.
func TestRootfsPathTask(t *testing.T) {
	e := setup(t)
	root := t.TempDir()
	bin, err := os.ReadFile(containerdtest.TestAppBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "testapp"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, out := e.taskConfig(t, "alloc4/chroot")
	_, err = e.rt.Start(e.ctx, cfg, ctrtask.CreateOptions{RootfsPath: root,
		SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "ls", "/", "write", "/tmp/marker", "x")}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.rt.Wait(e.ctx, cfg.ID)
	if err != nil || !res.Successful() {
		t.Fatalf("wait: %+v, %v", res, err)
	}
	if got := out.WaitClosed(t, 10*time.Second); !strings.Contains(got, "testapp") {
		t.Errorf("ls / = %q, want testapp listed", got)
	}
	if _, err := os.Stat(filepath.Join(root, "tmp", "marker")); err != nil {
		t.Errorf("write in rootfs dir not visible on host: %v", err)
	}
	if err := e.rt.Destroy(e.ctx, cfg.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "testapp")); err != nil {
		t.Errorf("destroy must not remove the host rootfs: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"": 15, "SIGHUP": 1, "hup": 1, "9": 9, "SIGUSR1": 10} {
		got, err := ctrtask.ParseSignal(in)
		if err != nil || int(got) != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ctrtask.ParseSignal("SIGNOPE"); err == nil {
		t.Error("unknown signal must fail")
	}
}

func TestContainerID(t *testing.T) {
	for in, want := range map[string]string{
		"5f2c-11aa/web":   "5f2c-11aa-web",
		"a1/my_task.v2":   "a1-my_task.v2",
		"a1/two  words!":  "a1-two-words",
		"a1/__x__":        "a1-x",
		"a1/dash--double": "a1-dash-double",
	} {
		if got := ctrtask.ContainerID(in); got != want {
			t.Errorf("ContainerID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStaleContainerIsReplaced starts a task ID whose exited container was
// never destroyed.
func TestStaleContainerIsReplaced(t *testing.T) {
	e := setup(t)
	img := e.h.ImportTestImage(t, "docker.io/berth/testapp:latest", "")
	cfg, _ := e.taskConfig(t, "alloc5/again")
	opts := ctrtask.CreateOptions{Image: img, SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "exit", "0")}}
	if _, err := e.rt.Start(e.ctx, cfg, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.Wait(e.ctx, cfg.ID); err != nil {
		t.Fatal(err)
	}
	// A fresh Runtime (a restarted plugin that lost the handle) starts the
	// same task ID again: the exited leftover must be replaced.
	rt2, err := ctrtask.Connect(e.ctx, &driver.ContainerdConfig{Address: e.h.Address, Namespace: e.h.Namespace}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	cfg2, _ := e.taskConfig(t, cfg.ID)
	cfg2.Resources = cfg.Resources
	opts.SpecOpts = []oci.SpecOpts{oci.WithProcessArgs("/testapp", "exit", "6")}
	if _, err := rt2.Start(e.ctx, cfg2, opts); err != nil {
		t.Fatalf("start over a stale container: %v", err)
	}
	res, err := rt2.Wait(e.ctx, cfg.ID)
	if err != nil || res.ExitCode != 6 {
		t.Fatalf("wait: %+v, %v", res, err)
	}
	if err := rt2.Destroy(e.ctx, cfg.ID, false); err != nil {
		t.Fatal(err)
	}
}

// TestContainerdRestart checks that a running task survives a restart of
// containerd and that Wait then reports the task's real exit.
func TestContainerdRestart(t *testing.T) {
	e := setup(t)
	img := e.h.ImportTestImage(t, "docker.io/berth/testapp:latest", "")
	cfg, out := e.taskConfig(t, "alloc6/survivor")
	_, err := e.rt.Start(e.ctx, cfg, ctrtask.CreateOptions{Image: img,
		SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "trap")}})
	if err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "trapping", 10*time.Second)
	e.h.Restart(t)
	// The client reconnects on its own; Stop may need a few tries meanwhile.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := e.rt.Stop(e.ctx, cfg.ID, 10*time.Second, "SIGTERM")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stop after containerd restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	res, err := e.rt.Wait(ctx, cfg.ID)
	if err != nil || !res.Successful() {
		t.Fatalf("wait after containerd restart: %+v, %v", res, err)
	}
	out.WaitFor(t, "terminated", 5*time.Second)
	if err := e.rt.Destroy(e.ctx, cfg.ID, false); err != nil {
		t.Fatal(err)
	}
}
