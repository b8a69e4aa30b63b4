package command

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

func TestHumanBytes(t *testing.T) {
	for in, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 8 << 30: "8.0 GiB", 1<<64 - 1: "16.0 EiB",
	} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestNodeStatusStats runs `node status -stats` against a real server
// whose node's agent is a stand-in answering fixed host stats.
func TestNodeStatusStats(t *testing.T) {
	want := api.HostStats{
		Memory:           &api.HostMemoryStats{Total: 8 << 30, Available: 6 << 30, Used: 2 << 30, Free: 5 << 30},
		CPU:              []*api.HostCPUStats{{CPU: "cpu0", User: 12.5, System: 2.5, Idle: 85}},
		DiskStats:        []*api.HostDiskStats{{Device: "/dev/vda", Mountpoint: "/", Size: 100 << 30, Used: 40 << 30, Available: 60 << 30, UsedPercent: 40}},
		AllocDirStats:    &api.HostDiskStats{Device: "/dev/vda", Mountpoint: "/", Size: 100 << 30, Used: 40 << 30},
		CPUTicksConsumed: 300,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	agent := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/client/stats" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(want)
	})}}
	agent.Start()
	t.Cleanup(agent.Close)

	c := servertest.NewCluster(t, 1)
	c.WaitForLeader(10 * time.Second)
	addr := c.HTTPAddrs()[0]
	cl, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	node := &structs.Node{
		ID: "00000001-0000-4000-8000-000000000000", SecretID: "s", Name: "n1", Datacenter: "dc1",
		Status: structs.NodeStatusReady, HTTPAddr: l.Addr().String(),
		NodeResources: &structs.NodeResources{Cpu: structs.NodeCpuResources{CpuShares: 4000}, Memory: structs.NodeMemoryResources{MemoryMB: 1024}},
	}
	if _, err := cl.ClientNodes().Register(node, nil); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, "node", "status", "-stats", "-address", addr, node.ID[:8])
	if code != ExitOK {
		t.Fatalf("node status -stats: exit %d: %s", code, stderr)
	}
	for _, s := range []string{"Host Resource Utilization", "300/4000 MHz", "2.0 GiB/8.0 GiB", "40.0 GiB/100.0 GiB",
		"CPU Stats", "12.50%", "Memory Stats", "Disk Stats", "/dev/vda"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	code, stdout, stderr = run(t, "node", "status", "-stats", "-json", "-address", addr, node.ID)
	var got api.HostStats
	if code != ExitOK || json.Unmarshal([]byte(stdout), &got) != nil || got.Memory.Total != 8<<30 {
		t.Fatalf("-stats -json: exit %d %s\n%s", code, stderr, stdout)
	}
	// without -stats, the agent is not asked
	agent.Close()
	if code, stdout, stderr := run(t, "node", "status", "-address", addr, node.ID); code != ExitOK || strings.Contains(stdout, "Host Resource") {
		t.Fatalf("node status: exit %d %s\n%s", code, stderr, stdout)
	}
	if code, _, _ := run(t, "node", "status", "-stats", "-address", addr, node.ID); code == ExitOK {
		t.Fatal("-stats with an unreachable agent succeeded")
	}
}
