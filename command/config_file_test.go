package command

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/lab"
)

func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServerConfigFileFromLabTemplate(t *testing.T) {
	gossip, _ := lab.ServerAddrs([]string{"10.0.0.11", "10.0.0.12", "10.0.0.13"})
	b, err := lab.RenderConfig(lab.ConfigData{Role: lab.RoleServer, Node: "server-2", DataDir: "/var/lib/b", Addr: "10.0.0.12",
		BootstrapExpect: 3, Join: gossip, Tuning: lab.Tuning{MinHeartbeatTTL: 2 * time.Second, HeartbeatGrace: time.Second}.Strings()})
	if err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "server.hcl", string(b))

	f := &serverFlags{}
	cmd := &cobra.Command{}
	f.register(cmd, false)
	// An explicit flag wins over the file.
	if err := cmd.ParseFlags([]string{"--config", path, "--http-port", "5000"}); err != nil {
		t.Fatal(err)
	}
	if err := f.loadConfigFiles(cmd); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != "server-2" || cfg.DataDir != "/var/lib/b" || cfg.BindAddr != "10.0.0.12" || cfg.AdvertiseAddr != "10.0.0.12" {
		t.Errorf("identity from file: %+v", cfg)
	}
	if cfg.HTTPPort != 5000 || cfg.RaftPort != 4647 || cfg.GossipPort != 4648 {
		t.Errorf("ports: http %d raft %d gossip %d, want 5000 (flag) 4647 4648", cfg.HTTPPort, cfg.RaftPort, cfg.GossipPort)
	}
	if cfg.BootstrapExpect != 3 || len(cfg.Join) != 3 || cfg.Join[2] != "10.0.0.13:4648" {
		t.Errorf("bootstrap %d join %v", cfg.BootstrapExpect, cfg.Join)
	}
	if cfg.MinHeartbeatTTL != 2*time.Second || cfg.HeartbeatGrace != time.Second {
		t.Errorf("tuning: ttl %s grace %s", cfg.MinHeartbeatTTL, cfg.HeartbeatGrace)
	}
}

func TestAgentConfigFileFromLabTemplate(t *testing.T) {
	b, err := lab.RenderConfig(lab.ConfigData{Role: lab.RoleAgent, Node: "agent-1", DataDir: "/d", Addr: "10.0.0.21",
		Servers: []string{"10.0.0.11:4646"}, Join: []string{"10.0.0.11:4648"}, RawExec: true, NodeClass: "lab",
		ContainerdAddress: "/run/lab/c.sock", ContainerdNamespace: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	second := writeConfig(t, "override.hcl", "datacenter = \"dc9\"\n")
	f := &agentFlags{}
	cmd := &cobra.Command{}
	f.register(cmd)
	if err := cmd.ParseFlags([]string{"--config", writeConfig(t, "agent.hcl", string(b)), "--config", second}); err != nil {
		t.Fatal(err)
	}
	if err := f.loadConfigFiles(cmd); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != "agent-1" || cfg.Datacenter != "dc9" || !cfg.RawExecEnabled || cfg.NodeClass != "lab" || cfg.HTTPPort != 4656 {
		t.Errorf("agent config: %+v", cfg)
	}
	if cfg.Containerd.Address != "/run/lab/c.sock" || cfg.Containerd.Namespace != "ns1" {
		t.Errorf("containerd: %+v", cfg.Containerd)
	}
	if len(cfg.Servers) != 1 || len(cfg.Join) != 1 || cfg.Meta["lab.node"] != "agent-1" {
		t.Errorf("servers %v join %v meta %v", cfg.Servers, cfg.Join, cfg.Meta)
	}
}

func TestConfigFileErrors(t *testing.T) {
	cases := []struct {
		name, body, want string
		agent            bool
	}{
		{"unknown attribute", "data_dir = \"/x\"\n\nbogus = 1\n", "bad.hcl:3:", false},
		{"unknown block", "server {\n  enabled = true\n  nope {}\n}\n", "bad.hcl:3:", false},
		{"syntax", "data_dir = \n", "bad.hcl:1:", false},
		{"bad duration", "server {\n  heartbeat_grace = \"soon\"\n}\n", "bad.hcl:1:", false},
		{"client block on a server", "client {\n  enabled = true\n}\n", "bad.hcl:1:", false},
		{"server block on an agent", "\nserver {\n  enabled = true\n}\n", "bad.hcl:2:", true},
		{"split advertise", "advertise {\n  http = \"10.0.0.1\"\n  serf = \"10.0.0.2\"\n}\n", "bad.hcl:1:", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, "bad.hcl", tc.body)
			cmd := &cobra.Command{}
			var err error
			if tc.agent {
				f := &agentFlags{}
				f.register(cmd)
				_ = cmd.ParseFlags([]string{"--config", path})
				err = f.loadConfigFiles(cmd)
			} else {
				f := &serverFlags{}
				f.register(cmd, false)
				_ = cmd.ParseFlags([]string{"--config", path})
				err = f.loadConfigFiles(cmd)
			}
			if !errors.Is(err, errConfigFile) {
				t.Fatalf("error %v is not a config file error", err)
			}
			if !strings.Contains(err.Error(), path[:len(path)-len("bad.hcl")]+tc.want) {
				t.Errorf("error %q does not point at %s", err, tc.want)
			}
		})
	}
}

func TestAgentConfigFileNetworkKeys(t *testing.T) {
	path := writeConfig(t, "agent.hcl", `client {
  enabled             = true
  network_plugin      = ""
  network_routing     = "vxlan"
  bridge_network_name = "berth9"
}
`)
	f := &agentFlags{}
	cmd := &cobra.Command{}
	f.register(cmd)
	if err := cmd.ParseFlags([]string{"--config", path, "--bridge", "flagbr"}); err != nil {
		t.Fatal(err)
	}
	if err := f.loadConfigFiles(cmd); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(cmd)
	if err != nil {
		t.Fatal(err)
	}
	// network_plugin = "" turns the plugin off; the -bridge flag wins over the file.
	if cfg.NetworkPlugin != "" || cfg.NetworkRouting != "vxlan" || cfg.Bridge != "flagbr" {
		t.Errorf("network config: plugin %q routing %q bridge %q", cfg.NetworkPlugin, cfg.NetworkRouting, cfg.Bridge)
	}
}

// FuzzParseConfig: any input gives a config or an error, never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"data_dir = \"/d\"\nserver {\n  enabled = true\n  bootstrap_expect = 3\n}\n",
		"client {\n  servers = [\"a:4646\"]\n  options = { \"driver.raw_exec.enable\" = \"1\" }\n}\nplugin \"raw_exec\" {\n  config { enabled = true }\n}\n",
		"ports { http = 1 }\nadvertise { http = \"1.2.3.4\" }\n",
		"bogus {",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := parseConfig("fuzz.hcl", src)
		if err == nil && c == nil {
			t.Fatal("no config and no error")
		}
	})
}
