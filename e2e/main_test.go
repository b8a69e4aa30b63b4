package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lab"
)

// berthBin is the berth binary built once for all tests ("" when the
// prerequisites are missing).
var berthBin string

// missing says why the lab cannot run here ("" when it can).
var missing string

func TestMain(m *testing.M) {
	switch {
	case os.Geteuid() != 0:
		missing = "the e2e lab needs root (network namespaces)"
	default:
		if _, err := os.Stat("/proc/self/ns/net"); err != nil {
			missing = "no network namespaces: " + err.Error()
		}
	}
	var dir string
	if bin := os.Getenv("BERTH_E2E_BIN"); bin != "" && missing == "" {
		berthBin = bin // a prebuilt binary, to iterate faster
	} else if missing == "" {
		var err error
		dir, err = os.MkdirTemp("", "berth-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		berthBin = filepath.Join(dir, "berth")
		build := exec.Command("go", "build", "-o", berthBin, "github.com/berth-dev/berth")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build berth:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// requireLab skips (or, under CI=true, fails) a test that cannot run here.
func requireLab(t *testing.T) {
	t.Helper()
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(missing)
	}
	t.Skip(missing)
}

// testTuning makes agents count as down within a few seconds.
var testTuning = lab.Tuning{MinHeartbeatTTL: 2 * time.Second, HeartbeatGrace: 2 * time.Second, FailoverHeartbeatTTL: 10 * time.Second}

// newLab brings up a lab with a unique name and tears it down (checking
// that nothing is left) when the test ends. Node logs are attached to a
// failing test.
func newLab(t *testing.T, servers, agents int) *lab.Lab {
	t.Helper()
	return newLabWith(t, lab.Options{Servers: servers, Agents: agents, Containerd: "no"})
}

// newLabWith is newLab with more options (name, dir, binary, tuning and
// logging are set here).
func newLabWith(t *testing.T, o lab.Options) *lab.Lab {
	t.Helper()
	requireLab(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "e" + hex.EncodeToString(b)
	root, err := os.MkdirTemp("", "bl-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.Name, o.Dir, o.Binary, o.Tuning, o.LogLevel, o.Logger, o.ReadyTimeout =
		name, filepath.Join(root, name), berthBin, testTuning, "debug", logger, 60*time.Second
	l, err := lab.Up(ctx, o)
	if err != nil {
		os.RemoveAll(root)
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, l)
		}
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if left := leftovers(l); len(left) > 0 {
			t.Errorf("lab down left behind: %v", left)
		}
		os.RemoveAll(root)
	})
	t.Logf("lab %s up on %s: %s", l.Name, l.Subnet, l.Address())
	return l
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dumpLogs attaches the tail of every node's log to the test output.
func dumpLogs(t *testing.T, l *lab.Lab) {
	for _, n := range l.Nodes {
		b, err := os.ReadFile(n.LogFile())
		if err != nil {
			continue
		}
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		t.Logf("---- %s log (tail) ----\n%s", n.Name, b)
	}
}

// leftovers lists what of the lab still exists after Down.
func leftovers(l *lab.Lab) []string {
	var left []string
	for _, n := range l.Nodes {
		if _, err := os.Stat(filepath.Join("/var/run/netns", n.Netns)); err == nil {
			left = append(left, "netns "+n.Netns)
		}
		if _, err := os.Stat(filepath.Join("/sys/class/net", n.HostVeth)); err == nil {
			left = append(left, "veth "+n.HostVeth)
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", l.Bridge)); err == nil {
		left = append(left, "bridge "+l.Bridge)
	}
	if _, err := os.Stat(l.Dir); err == nil {
		left = append(left, "dir "+l.Dir)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), l.Dir) {
		left = append(left, "mounts under "+l.Dir)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), l.Dir) {
			left = append(left, "process "+e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}

// waitFor polls cond every interval until it returns nil or timeout
// passes, and returns the last error.
func waitFor(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// cli runs the berth binary against addr (BERTH_ADDR) and returns its
// combined output.
func cli(ctx context.Context, addr string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_ADDR="+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("berth %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
