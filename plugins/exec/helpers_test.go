package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/driver"
)

// fifoReader collects what a task writes to one log FIFO, as the agent's
// log reader would.
type fifoReader struct {
	path string
	mu   sync.Mutex
	buf  bytes.Buffer
	eof  chan struct{}
}

// newFIFO makes a FIFO and starts reading it. The read side's open blocks
// until a writer appears, as the agent's does; cleanup unblocks it.
func newFIFO(t *testing.T, path string) *fifoReader {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo %s: %v", path, err)
	}
	r := &fifoReader{path: path, eof: make(chan struct{})}
	go func() {
		defer close(r.eof)
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		// A writer that comes and goes lets a reader still blocked in open
		// return (with EOF). The reader may not have reached open yet, so
		// retry; a task still holding the FIFO is ended by the driver's
		// cleanup, which runs later.
		for i := 0; i < 100; i++ {
			fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK, 0)
			if err == nil {
				unix.Close(fd)
				return
			}
			select {
			case <-r.eof:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	return r
}

func (r *fifoReader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// all waits for EOF (every writer closed) and returns what was read.
func (r *fifoReader) all(t *testing.T) string {
	t.Helper()
	select {
	case <-r.eof:
	case <-time.After(10 * time.Second):
		t.Fatalf("fifo %s: no EOF within 10s; read so far %q", r.path, r.String())
	}
	return r.String()
}

// waitFor polls until the output contains s.
func (r *fifoReader) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("fifo %s: %q did not appear within 10s; read %q", r.path, s, r.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testTask is a task config with its directories and log FIFOs made.
type testTask struct {
	cfg            *driver.TaskConfig
	stdout, stderr *fifoReader
}

func newTestTask(t *testing.T, driverName, command string, args ...string) *testTask {
	t.Helper()
	alloc := t.TempDir()
	taskDir := filepath.Join(alloc, "web")
	for _, d := range []string{"alloc/logs", "web/local", "web/secrets", "web/tmp"} {
		if err := os.MkdirAll(filepath.Join(alloc, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dc, err := json.Marshal(map[string]any{"command": command, "args": args})
	if err != nil {
		t.Fatal(err)
	}
	allocID := strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	if len(allocID) > 40 {
		allocID = allocID[:40]
	}
	cfg := &driver.TaskConfig{
		ID: allocID + "/web", AllocID: allocID, TaskName: "web", JobID: "job", TaskGroup: "group",
		Namespace: "default", Driver: driverName, DriverConfig: dc,
		Env:      map[string]string{"BERTH_TEST": "yes"},
		AllocDir: alloc, TaskDir: taskDir, SharedDir: filepath.Join(alloc, "alloc"),
		StdoutPath: filepath.Join(alloc, "alloc/logs/.web.stdout.fifo"),
		StderrPath: filepath.Join(alloc, "alloc/logs/.web.stderr.fifo"),
	}
	return &testTask{cfg: cfg, stdout: newFIFO(t, cfg.StdoutPath), stderr: newFIFO(t, cfg.StderrPath)}
}

// newRawExecDriver is a driver with raw_exec enabled; cleanup force-
// destroys whatever tasks the test left.
func newRawExecDriver(t *testing.T) *Driver {
	t.Helper()
	d := New(slog.New(slog.NewTextHandler(testWriter{t}, nil))).(*Driver)
	if err := d.SetConfig(context.Background(), &driver.PluginConfig{RawExecEnabled: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAll(t, d) })
	return d
}

func destroyAll(t *testing.T, d *Driver) {
	d.mu.Lock()
	var ids []string
	for id := range d.tasks {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := d.DestroyTask(ctx, id, true); err != nil && !errors.Is(err, driver.ErrTaskNotFound) {
			t.Errorf("cleanup: destroy %s: %v", id, err)
		}
		cancel()
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitExit(t *testing.T, d driver.Driver, id string, within time.Duration) *driver.ExitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	res, err := d.WaitTask(ctx, id)
	if err != nil {
		t.Fatalf("wait task %s: %v", id, err)
	}
	return res
}

// waitGone polls until pid is no longer the live process that started at
// startTime.
func waitGone(t *testing.T, pid int, startTime uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid, startTime) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive after 10s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ io.Writer = testWriter{}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func killGroup(pgid int) error { return syscall.Kill(-pgid, syscall.SIGKILL) }
