package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

// openWriter opens the FIFO the way a driver does.
func openWriter(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// readAll concatenates the rotated files of base in index order.
func readAll(t *testing.T, dir, base string) string {
	t.Helper()
	idxs, err := listIndexes(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, i := range idxs {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s.%d", base, i)))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func TestRotatorSizeAndCount(t *testing.T) {
	dir := t.TempDir()
	r, err := newRotator(dir, "web.stdout", 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	// 45 bytes in 10-byte files: indexes 0..4, only 2..4 kept.
	data := []byte("0123456789abcdefghijABCDEFGHIJklmnopqrstKLMNO")
	if _, err := r.Write(data[:7]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(data[7:]); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	idxs, _ := listIndexes(dir, "web.stdout")
	if fmt.Sprint(idxs) != "[2 3 4]" {
		t.Fatalf("indexes = %v, want [2 3 4]", idxs)
	}
	if got := readAll(t, dir, "web.stdout"); got != string(data[20:]) {
		t.Fatalf("kept %q, want %q", got, data[20:])
	}

	// Reuse continues after the highest index, appending to it.
	r2, err := newRotator(dir, "web.stdout", 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Write([]byte("xyzuvw")); err != nil {
		t.Fatal(err)
	}
	r2.Close()
	idxs, _ = listIndexes(dir, "web.stdout")
	if fmt.Sprint(idxs) != "[3 4 5]" {
		t.Fatalf("after reuse indexes = %v, want [3 4 5]", idxs)
	}
	b4, _ := os.ReadFile(filepath.Join(dir, "web.stdout.4"))
	b5, _ := os.ReadFile(filepath.Join(dir, "web.stdout.5"))
	if string(b4) != "KLMNOxyzuv" || string(b5) != "w" {
		t.Fatalf("file 4 %q, file 5 %q", b4, b5)
	}
}

func TestTaskLoggerCopiesAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	l, err := NewTaskLogger(dir, "web", &structs.LogConfig{MaxFiles: 2, MaxFileSizeMB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.StdoutPath() != filepath.Join(dir, ".web.stdout.fifo") || l.StderrPath() != filepath.Join(dir, ".web.stderr.fifo") {
		t.Fatalf("paths %s %s", l.StdoutPath(), l.StderrPath())
	}
	out := openWriter(t, l.StdoutPath())
	errw := openWriter(t, l.StderrPath())
	fmt.Fprint(out, "hello\n")
	fmt.Fprint(errw, "oops\n")
	waitFor(t, "stdout copied", func() bool { return readAll(t, dir, "web.stdout") == "hello\n" })
	waitFor(t, "stderr copied", func() bool { return readAll(t, dir, "web.stderr") == "oops\n" })

	// "Agent restart": close and re-create the logger while the writer
	// keeps its end open; a new reader attaches before the next write.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := NewTaskLogger(dir, "web", &structs.LogConfig{MaxFiles: 2, MaxFileSizeMB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if _, err := fmt.Fprint(out, "again\n"); err != nil {
		t.Fatalf("write after re-attach: %v", err)
	}
	waitFor(t, "stdout after restart", func() bool { return readAll(t, dir, "web.stdout") == "hello\nagain\n" })
	idxs, _ := listIndexes(dir, "web.stdout")
	if fmt.Sprint(idxs) != "[0]" {
		t.Fatalf("indexes after restart %v", idxs)
	}
}

func TestTaskLoggerKeepsBufferedDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	l, err := NewTaskLogger(dir, "web", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := openWriter(t, l.StdoutPath())
	// Keep an extra reference so the pipe has a reader during the gap; this
	// stands in for the shim's own O_RDWR handle.
	hold, err := os.OpenFile(l.StdoutPath(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	l.Close()
	if _, err := fmt.Fprint(out, "during gap\n"); err != nil {
		t.Fatalf("write during gap: %v", err)
	}
	l2, err := NewTaskLogger(dir, "web", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	waitFor(t, "buffered data read by new logger", func() bool { return readAll(t, dir, "web.stdout") == "during gap\n" })
}

func TestTaskLoggerDisabledDiscards(t *testing.T) {
	dir := t.TempDir()
	l, err := NewTaskLogger(dir, "web", &structs.LogConfig{Disabled: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := openWriter(t, l.StdoutPath())
	// More than a pipe buffer: would block if nobody read.
	done := make(chan error, 1)
	go func() {
		_, err := out.Write(bytes.Repeat([]byte("x"), 256*1024))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writer blocked: disabled logger does not drain")
	}
	l.Close()
	if idxs, _ := listIndexes(dir, "web.stdout"); len(idxs) != 0 {
		t.Fatalf("disabled logger wrote files %v", idxs)
	}
}

func TestNewTaskLoggerRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewTaskLogger(dir, "../x", nil, nil); err == nil {
		t.Fatal("accepted ../x")
	}
	if err := os.WriteFile(FIFOPath(dir, "web", "stdout"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTaskLogger(dir, "web", nil, nil); err == nil {
		t.Fatal("accepted a regular file as fifo")
	}
}

func writeFiles(t *testing.T, dir string, parts ...string) {
	t.Helper()
	for i, p := range parts {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("web.stdout.%d", i)), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func collect(t *testing.T, dir, origin string, offset int64) (string, []StreamFrame) {
	t.Helper()
	var b strings.Builder
	var frames []StreamFrame
	err := Stream(context.Background(), dir, "web", "stdout", origin, offset, false, func(f StreamFrame) error {
		b.Write(f.Data)
		frames = append(frames, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), frames
}

func TestStreamOriginsAndOffsets(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "aaaa", "bbbb", "cc")
	cases := []struct {
		origin string
		offset int64
		want   string
	}{
		{"start", 0, "aaaabbbbcc"},
		{"start", 5, "bbbcc"},
		{"start", 100, ""},
		{"end", 0, ""},
		{"end", 3, "bcc"},
		{"end", 7, "abbbbcc"},
		{"end", 100, "aaaabbbbcc"},
		{"", 0, "aaaabbbbcc"},
	}
	for _, c := range cases {
		got, _ := collect(t, dir, c.origin, c.offset)
		if got != c.want {
			t.Errorf("origin %s offset %d: %q, want %q", c.origin, c.offset, got, c.want)
		}
	}
	_, frames := collect(t, dir, "start", 5)
	if frames[0].File != "alloc/logs/web.stdout.1" || frames[0].Offset != 1 {
		t.Errorf("first frame %+v", frames[0])
	}
	for _, bad := range [][2]string{{"stdin", "start"}, {"stdout", "middle"}} {
		err := Stream(context.Background(), dir, "web", bad[0], bad[1], 0, false, func(StreamFrame) error { return nil })
		if !errors.Is(err, ErrInvalidArg) {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
	// No file yet, no follow: nothing, no error.
	got, _ := collect(t, t.TempDir(), "start", 0)
	if got != "" {
		t.Errorf("empty dir gave %q", got)
	}
}

func TestStreamFollowAcrossRotation(t *testing.T) {
	oldPoll := pollInterval
	pollInterval = 10 * time.Millisecond
	t.Cleanup(func() { pollInterval = oldPoll })

	dir := t.TempDir()
	r, err := newRotator(dir, "web.stdout", 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Write([]byte("first-"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- Stream(ctx, dir, "web", "stdout", "start", 0, true, func(f StreamFrame) error {
			mu.Lock()
			got.Write(f.Data)
			mu.Unlock()
			return nil
		})
	}()
	current := func() string { mu.Lock(); defer mu.Unlock(); return got.String() }
	waitFor(t, "first data", func() bool { return current() == "first-" })
	// Rotates twice: files 0,1,2 written, 0 pruned while the stream may
	// still be on it.
	want := "first-"
	for _, chunk := range []string{"second-", "third-", "fourth"} {
		r.Write([]byte(chunk))
		want += chunk
		waitFor(t, "followed "+chunk, func() bool { return current() == want })
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not stop on cancel")
	}
}

func TestStreamEmitErrorStops(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "abc")
	boom := errors.New("client gone")
	err := Stream(context.Background(), dir, "web", "stdout", "start", 0, true, func(StreamFrame) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

// What a task wrote just before it exited is still in the pipe when the
// task runner closes the logger; Close must copy it, not drop it.
func TestTaskLoggerCloseDrainsThePipe(t *testing.T) {
	for i := range 20 {
		dir := t.TempDir()
		l, err := NewTaskLogger(dir, "web", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(l.StdoutPath(), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		// under the pipe's 64 KiB buffer: the writes never block
		want := strings.Repeat(fmt.Sprintf("line %02d of the last words\n", i), 1500)
		if _, err := out.WriteString(want); err != nil {
			t.Fatal(err)
		}
		out.Close()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, dir, "web.stdout"); got != want {
			t.Fatalf("round %d: log file has %d bytes after Close, want %d", i, len(got), len(want))
		}
	}
}
