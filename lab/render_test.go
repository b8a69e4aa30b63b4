package lab

import (
	"strings"
	"testing"
	"time"
)

func TestRenderConfigServer(t *testing.T) {
	gossip, _ := ServerAddrs([]string{"10.0.0.11", "10.0.0.12"})
	b, err := RenderConfig(ConfigData{Role: RoleServer, Node: "server-1", DataDir: "/var/lib/berth", Addr: "10.0.0.11",
		BootstrapExpect: 2, Join: gossip, Tuning: Tuning{MinHeartbeatTTL: 2 * time.Second}.Strings()})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`bind_addr  = "10.0.0.11"`, `bootstrap_expect = 2`, `retry_join = ["10.0.0.11:4648", "10.0.0.12:4648"]`,
		`min_heartbeat_ttl = "2s"`, `http = 4646`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered server config lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "heartbeat_grace") {
		t.Errorf("unset heartbeat_grace rendered:\n%s", s)
	}
}

func TestRenderConfigAgentAndErrors(t *testing.T) {
	b, err := RenderConfig(ConfigData{Role: RoleAgent, Node: "agent-1", DataDir: "/d", Addr: "10.0.0.21",
		Servers: []string{"10.0.0.11:4646"}, RawExec: true, ContainerdAddress: "/run/c.sock", ContainerdNamespace: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`servers    = ["10.0.0.11:4646"]`, `enabled = true`, `namespace = "a1"`, `http = 4656`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("rendered agent config lacks %q:\n%s", want, b)
		}
	}
	if _, err := RenderConfig(ConfigData{Role: "worker", Addr: "10.0.0.1"}); err == nil {
		t.Error("unknown role rendered")
	}
	if _, err := RenderConfig(ConfigData{Role: RoleAgent, Addr: "nope"}); err == nil {
		t.Error("bad address rendered")
	}
}
