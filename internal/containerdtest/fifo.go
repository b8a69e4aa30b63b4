package containerdtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
)

// FIFO is a named pipe read in the background, as the agent reads a task's
// stdout/stderr FIFO.
type FIFO struct {
	Path string
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

// NewFIFO creates a FIFO named name in a temp dir and starts reading it
// (until its writers close it, or the test ends).
func NewFIFO(t testing.TB, name string) *FIFO {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("containerdtest: mkfifo: %v", err)
	}
	f := &FIFO{Path: path, done: make(chan struct{})}
	go f.read()
	t.Cleanup(func() {
		// Unblock a reader whose writer never came.
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
		}
	})
	return f
}

func (f *FIFO) read() {
	defer close(f.done)
	r, err := os.OpenFile(f.Path, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer r.Close()
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		f.mu.Lock()
		f.buf.Write(b[:n])
		f.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// String is what has been read so far.
func (f *FIFO) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

// WaitFor polls until the output contains s, failing the test after timeout.
func (f *FIFO) WaitFor(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(f.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("containerdtest: %s: %q not seen within %s; got %q", filepath.Base(f.Path), s, timeout, f.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitClosed waits until every writer closed the FIFO and returns all output.
func (f *FIFO) WaitClosed(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(timeout):
		t.Fatalf("containerdtest: %s not closed within %s; got %q", filepath.Base(f.Path), timeout, f.String())
	}
	return f.String()
}

// ImportTestImage imports the test image into h's namespace as name (e.g.
// "docker.io/berth/testapp:latest"), unpacked into snapshotter ("" for
// overlayfs), and returns it.
func (h *Harness) ImportTestImage(t testing.TB, name, snapshotter string) containerd.Image {
	t.Helper()
	if snapshotter == "" {
		snapshotter = "overlayfs"
	}
	path := filepath.Join(t.TempDir(), "testapp-oci.tar")
	WriteOCIArchive(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(h.Context(context.Background()), time.Minute)
	defer cancel()
	c := h.Client()
	imgs, err := c.Import(ctx, f)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("containerdtest: import test image: %v (%d images)", err, len(imgs))
	}
	rec := images.Image{Name: name, Target: imgs[0].Target}
	if _, err := c.ImageService().Create(ctx, rec); err != nil {
		t.Fatalf("containerdtest: name test image: %v", err)
	}
	img, err := c.GetImage(ctx, name)
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	if err := img.Unpack(ctx, snapshotter); err != nil {
		t.Fatalf("containerdtest: unpack test image: %v", err)
	}
	return img
}

// MountsContaining lists /proc/self/mountinfo lines mentioning s.
func MountsContaining(s string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out, nil
}
