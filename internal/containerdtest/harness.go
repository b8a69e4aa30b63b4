// Package containerdtest is the test harness for code that runs tasks on
// containerd: a private containerd per test (Start), an in-process OCI
// registry (Registry), and a tiny test image built from the static Go
// program in ./testapp (BuildTestImage, WriteOCIArchive).
//
// Tests that use Start need root and the containerd binary: they are
// skipped without them, and fail instead when CI=true.
package containerdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/berth-dev/berth/agent/containerdproc"
)

// Harness is a private containerd for one test.
type Harness struct {
	// Address is the containerd socket.
	Address string
	// Namespace is unique to this Harness.
	Namespace string
	// Root is containerd's root directory.
	Root string

	t      testing.TB
	opts   containerdproc.Options
	mu     sync.Mutex
	proc   *containerdproc.Process
	once   sync.Once
	client *containerd.Client
}

// Require skips the test (or fails it when CI=true) unless it runs as root
// with the containerd binary on PATH.
func Require(t testing.TB) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := exec.LookPath("containerd"); err != nil {
		missing = "the containerd binary"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("containerdtest: this test needs %s", missing)
	}
	t.Skipf("containerdtest: this test needs %s", missing)
}

// Start launches a private containerd in a short temporary directory and
// stops it (after deleting every container of its namespace) when the test
// ends.
func Start(t testing.TB) *Harness {
	t.Helper()
	Require(t)
	// Unix socket paths are limited to 108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("/tmp", "ctd")
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	logPath := filepath.Join(dir, "containerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	opts := containerdproc.Options{
		Root:      filepath.Join(dir, "root"),
		State:     filepath.Join(dir, "state"),
		Address:   filepath.Join(dir, "c.sock"),
		LogWriter: logFile,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := containerdproc.Start(ctx, opts)
	if err != nil {
		logFile.Close()
		out, _ := os.ReadFile(logPath)
		os.RemoveAll(dir)
		t.Fatalf("containerdtest: %v\ncontainerd log:\n%s", err, out)
	}
	h := &Harness{Address: proc.Address(), Namespace: "t-" + randomHex(5), Root: opts.Root, t: t, opts: opts, proc: proc}
	t.Cleanup(func() {
		h.cleanupContainers()
		if h.client != nil {
			h.client.Close()
		}
		h.mu.Lock()
		proc := h.proc
		h.mu.Unlock()
		if err := proc.Stop(); err != nil {
			t.Errorf("containerdtest: stop containerd: %v", err)
		}
		logFile.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("containerd log (tail):\n%s", tail(out, 4000))
			}
		}
		unmountUnder(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("containerdtest: remove %s: %v", dir, err)
		}
	})
	return h
}

// Restart stops containerd and starts it again on the same root, state
// and socket (running shims survive), as after a containerd upgrade.
func (h *Harness) Restart(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.proc.Stop(); err != nil {
		t.Fatalf("containerdtest: restart: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := containerdproc.Start(ctx, h.opts)
	if err != nil {
		t.Fatalf("containerdtest: restart: %v", err)
	}
	h.proc = proc
}

// Client returns a containerd client (closed by the harness) whose default
// namespace is h.Namespace.
func (h *Harness) Client() *containerd.Client {
	h.t.Helper()
	h.once.Do(func() {
		c, err := containerd.New(h.Address, containerd.WithDefaultNamespace(h.Namespace), containerd.WithTimeout(10*time.Second))
		if err != nil {
			h.t.Fatalf("containerdtest: client: %v", err)
		}
		h.client = c
	})
	return h.client
}

// Context returns ctx carrying h.Namespace.
func (h *Harness) Context(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, h.Namespace)
}

// cleanupContainers kills and deletes whatever a test left in its namespace
// so no shim outlives the harness.
func (h *Harness) cleanupContainers() {
	ctx, cancel := context.WithTimeout(h.Context(context.Background()), 30*time.Second)
	defer cancel()
	c := h.Client()
	ctrs, err := c.Containers(ctx)
	if err != nil {
		h.t.Logf("containerdtest: list containers: %v", err)
		return
	}
	for _, ctr := range ctrs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			_ = task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
			if ch, err := task.Wait(ctx); err == nil {
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
				}
			}
			_, _ = task.Delete(ctx, containerd.WithProcessKill)
		}
		_ = ctr.Delete(ctx, containerd.WithSnapshotCleanup)
	}
}

// unmountUnder lazily unmounts anything still mounted below dir.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
