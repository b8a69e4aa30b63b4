// Package pluginproctest holds what the plugin contracts' tests share:
// they run their test binary as a plugin, supervise it and watch its
// process come and go.
package pluginproctest

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Logger logs to t.Log, so plugin logs relayed by go-plugin show up with
// the test that caused them.
func Logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// WaitFor polls cond every 20ms until it holds or timeout passes.
func WaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ProcessGone reports that pid no longer runs (gone, or a zombie nobody
// reaped yet).
func ProcessGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

// OrphanedPluginExits runs this test binary with parentEnv=1, as a parent
// that launches the plugin, prints its PID and exits at once (a crashed
// agent), and wants the orphaned plugin to notice and exit by itself.
func OrphanedPluginExits(t *testing.T, parentEnv string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parent := exec.CommandContext(ctx, os.Args[0])
	parent.Env = append(os.Environ(), parentEnv+"=1")
	out, err := parent.Output()
	if err != nil {
		t.Fatalf("parent: %v (%s)", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		t.Fatalf("parent printed %q, want the plugin pid", out)
	}
	t.Cleanup(func() {
		if !ProcessGone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	WaitFor(t, 5*time.Second, "the orphaned plugin to exit", func() bool { return ProcessGone(pid) })
}
