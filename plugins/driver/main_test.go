package driver

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/berth-dev/berth/plugins/internal/pluginproc/pluginproctest"
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

// The helpers every plugin contract's tests share.
var (
	testLogger  = pluginproctest.Logger
	waitFor     = pluginproctest.WaitFor
	processGone = pluginproctest.ProcessGone
)

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

// counter is an atomic int for callbacks.
type counter struct{ n atomic.Int64 }

func (c *counter) inc()       { c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }
