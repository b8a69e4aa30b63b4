package network

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/pluginproc"
	"github.com/berth-dev/berth/plugins/internal/pluginproc/pluginproctest"
)

// The test binary plays four parts, chosen by environment: the memNetwork
// plugin (envPluginMode), a driver plugin (envDriverMode, to be launched
// as a network plugin by mistake), a short-lived parent that launches the
// plugin and exits without stopping it (envParentMode), and the tests.
const (
	envPluginMode = "BERTH_NETWORK_TEST_PLUGIN"
	envDriverMode = "BERTH_NETWORK_TEST_DRIVER"
	envParentMode = "BERTH_NETWORK_TEST_PARENT"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envPluginMode) == "1":
		Serve(newMemNetwork(), NewPluginLogger(os.Stderr, slog.LevelDebug))
		os.Exit(0)
	case os.Getenv(envDriverMode) == "1":
		// The handshake fails before anything is dispensed, so no Driver
		// is needed.
		driver.Serve(nil, driver.NewPluginLogger(os.Stderr, slog.LevelDebug))
		os.Exit(0)
	case os.Getenv(envParentMode) == "1":
		os.Exit(runOrphaningParent())
	}
	os.Exit(m.Run())
}

// pluginCommand launches this test binary as the memNetwork plugin.
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
		Logger:           pluginproc.NewHCLogger(slog.New(slog.DiscardHandler), "parent"),
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

// testConfig is what every test supervisor hands the plugin. The /29
// leaves five allocation addresses (.2–.6), so tests can exhaust it.
func testConfig() *Config {
	return &Config{
		StateDir: "/var/lib/berth/network/mem", Bridge: "berth0",
		ClusterCIDR: "10.88.0.0/16", NodeSubnet: "10.88.3.0/29",
		ClusterCIDR6: "fd00:b37:0::/48", NodeSubnet6: "fd00:b37:0:3::/64",
		NodeAddress: "192.168.50.3", HostAddresses: []string{"192.168.50.3", "127.0.0.1"},
		Routing: RoutingVXLAN, VXLANID: 42, VXLANPort: 4789, MTU: 1450,
		DNSServers: []string{"192.168.50.1", "1.1.1.1"}, DNSSearches: []string{"service.consul"},
		Extra: json.RawMessage(`{"k":"v"}`),
	}
}

// startSupervisor runs a Supervisor of the memNetwork plugin for one test.
func startSupervisor(t *testing.T, mutate func(*SupervisorConfig)) *Supervisor {
	t.Helper()
	cfg := SupervisorConfig{
		Name: "mem", Command: pluginCommand, Config: testConfig(),
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

// probe asks n's process (a memNetwork) who it is and what it saw.
func probe(ctx context.Context, n Network) (url.Values, error) {
	an, err := n.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: probeAllocID})
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(an.Interface)
}
