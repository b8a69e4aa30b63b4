package driver

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

// The test binary plays three parts, chosen by environment:
// the plugin (envPluginMode), a short-lived parent that launches the plugin
// and exits without stopping it (envParentMode), and the tests.
const (
	envPluginMode = "BERTH_DRIVER_TEST_PLUGIN"
	envParentMode = "BERTH_DRIVER_TEST_PARENT"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envPluginMode) == "1":
		Serve(newMemDriver(), NewPluginLogger(os.Stderr, slog.LevelDebug))
		os.Exit(0)
	case os.Getenv(envParentMode) == "1":
		os.Exit(runOrphaningParent())
	}
	os.Exit(m.Run())
}

// pluginCommand launches this test binary as the memDriver plugin.
func pluginCommand() *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{envPluginMode + "=1"}
	return cmd
}

// runOrphaningParent launches the plugin, prints its PID and exits
// without stopping it, as a crashing agent would.
func runOrphaningParent() int {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          pluginSet(nil),
		Cmd:              pluginCommand(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     30 * time.Second,
		Logger:           newHCLogger(slog.New(slog.DiscardHandler), "parent"),
	})
	if _, err := client.Client(); err != nil {
		fmt.Fprintln(os.Stderr, "start plugin:", err)
		return 1
	}
	fmt.Println(client.ReattachConfig().Pid)
	return 0
}

// testLogger logs to t.Log, so plugin logs relayed by go-plugin show up
// with the test that caused them.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testPluginConfig is what every test supervisor hands the plugin.
var testPluginConfig = &PluginConfig{
	StateDir: "/var/lib/berth/plugins/mem",
	Containerd: &ContainerdConfig{
		Address: "/run/berth/containerd.sock", Namespace: "berth-test",
		Mirrors: map[string][]string{"docker.io": {"http://127.0.0.1:5000", "http://127.0.0.1:5001"}},
	},
	Extra: []byte(`{"k":"v"}`),
}

// startSupervisor runs a Supervisor of the memDriver plugin for one test.
func startSupervisor(t *testing.T, mutate func(*SupervisorConfig)) *Supervisor {
	t.Helper()
	cfg := SupervisorConfig{
		Name: "mem", Command: pluginCommand, Config: testPluginConfig,
		Logger: testLogger(t), MaxBackoff: 200 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s := NewSupervisor(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start supervisor: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports that pid no longer runs (gone, or a zombie nobody
// reaped yet).
func processGone(pid int) bool {
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

// counter is an atomic int for callbacks.
type counter struct{ n atomic.Int64 }

func (c *counter) inc()       { c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }
