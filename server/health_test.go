package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// A server that cannot form a cluster says so on /v1/agent/health with a
// 500 and a JSON body, as Nomad does, so load balancers take it out.
func TestAgentHealthWithoutLeader(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1"
	cfg.HTTPPort, cfg.RaftPort, cfg.GossipPort = 0, 0, 0
	cfg.BootstrapExpect = 3 // alone, it never bootstraps
	cfg.GossipLocal = true
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.HTTPAddr() + "/v1/agent/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	var body structs.AgentHealthResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("health body is not JSON: %v", err)
	}
	if body.Server == nil || body.Server.Ok || body.Server.Message == "" {
		t.Fatalf("unexpected health body: %+v", body.Server)
	}

	// writes are refused with 503 after a bounded wait, not a 500
	resp2, err := client.Post("http://"+s.HTTPAddr()+"/v1/jobs", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("write without a leader: status %d, want 503", resp2.StatusCode)
	}
}
