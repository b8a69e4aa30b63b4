package command

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

// opsAgent plays the agent of one node for the proxied commands.
type opsAgent struct {
	mu      sync.Mutex
	signals []string
}

func (o *opsAgent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/client/fs/logs/{alloc}", func(w http.ResponseWriter, r *http.Request) {
		data := "line1\nline2\nline3\n"
		if r.URL.Query().Get("type") == "stderr" {
			data = "oops\n"
		}
		json.NewEncoder(w).Encode(api.StreamFrame{Data: []byte(data), File: "alloc/logs/app.stdout.0"})
	})
	mux.HandleFunc("PUT /v1/client/allocation/{alloc}/signal", func(w http.ResponseWriter, r *http.Request) {
		var body api.AllocSignalRequest
		json.NewDecoder(r.Body).Decode(&body)
		o.mu.Lock()
		o.signals = append(o.signals, body.Task+":"+body.Signal)
		o.mu.Unlock()
		io.WriteString(w, "{}")
	})
	up := websocket.Upgrader{}
	mux.HandleFunc("GET /v1/client/allocation/{alloc}/exec", func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		var cmd []string
		json.Unmarshal([]byte(r.URL.Query().Get("command")), &cmd)
		conn.WriteJSON(api.ExecStreamingOutput{Stdout: &api.ExecStreamingIOOperation{Data: []byte(strings.Join(cmd, " ") + "\n")}})
		conn.WriteJSON(api.ExecStreamingOutput{Exited: true, Result: &api.ExecStreamingExitResult{ExitCode: 7}})
	})
	return mux
}

func opsNode(i int, httpAddr string) *structs.Node {
	return &structs.Node{
		ID: fmt.Sprintf("%08d-0000-4000-8000-0000000000cc", i), SecretID: fmt.Sprintf("secret-%d", i),
		Name: fmt.Sprintf("ops-%d", i), Datacenter: "dc1", HTTPAddr: httpAddr, Status: structs.NodeStatusReady,
		Attributes: map[string]string{"kernel.name": "linux", "driver.exec": "1"},
		Drivers:    map[string]*structs.DriverInfo{"exec": {Detected: true, Healthy: true, HealthDescription: "Healthy"}},
		NodeResources: &structs.NodeResources{Cpu: structs.NodeCpuResources{CpuShares: 4000},
			Memory: structs.NodeMemoryResources{MemoryMB: 4096}, Disk: structs.NodeDiskResources{DiskMB: 10000},
			MinDynamicPort: 20000, MaxDynamicPort: 30000},
	}
}

func TestCLINodeAndAllocOps(t *testing.T) {
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	addr := c.HTTPAddrs()[0]
	cl, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	agent := &opsAgent{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: agent.handler()}}
	srv.Start()
	t.Cleanup(srv.Close)
	n1, n2 := opsNode(1, l.Addr().String()), opsNode(2, l.Addr().String())
	for _, n := range []*structs.Node{n1, n2} {
		if _, err := cl.ClientNodes().Register(n, nil); err != nil {
			t.Fatal(err)
		}
	}
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Datacenters: []string{"dc1"},
		TaskGroups: []*structs.TaskGroup{{Name: "g", Count: 2, Migrate: &structs.MigrateStrategy{MaxParallel: 1},
			Tasks: []*structs.Task{{Name: "app", Driver: "exec", Config: map[string]any{"command": "/bin/sleep"},
				Resources: &structs.Resources{CPU: 100, MemoryMB: 64}}}}}}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	live := func() []*structs.Allocation {
		all, _ := s.State().AllocsByJob(nil, structs.DefaultNamespace, "web")
		var out []*structs.Allocation
		for _, a := range all {
			if !a.TerminalStatus() {
				out = append(out, a)
			}
		}
		return out
	}
	servertest.WaitFor(t, 10*time.Second, "2 allocations placed", func() bool { return len(live()) == 2 })
	alloc := live()[0]

	// node status: list and detail with drivers and allocations
	if code, out, errOut := run(t, "node", "status", "-address", addr); code != ExitOK || !strings.Contains(out, "ops-1") || !strings.Contains(out, "ops-2") {
		t.Fatalf("node status: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := run(t, "node", "status", "-verbose", "-address", addr, n1.ID[:8])
	if code != ExitOK || !strings.Contains(out, "Drivers") || !strings.Contains(out, "Allocations") ||
		!strings.Contains(out, "kernel.name") || !strings.Contains(out, "Drain") {
		t.Fatalf("node status detail: %d\n%s%s", code, out, errOut)
	}

	// proxied alloc commands
	code, out, errOut = run(t, "alloc", "logs", "-address", addr, alloc.ID[:8])
	if code != ExitOK || out != "line1\nline2\nline3\n" {
		t.Fatalf("alloc logs: %d %q %s", code, out, errOut)
	}
	code, out, _ = run(t, "alloc", "logs", "-tail", "-n", "1", "-address", addr, alloc.ID, "app")
	if code != ExitOK || out != "line3\n" {
		t.Fatalf("alloc logs -tail -n 1: %d %q", code, out)
	}
	if code, out, _ = run(t, "alloc", "logs", "-stderr", "-address", addr, alloc.ID); code != ExitOK || out != "oops\n" {
		t.Fatalf("alloc logs -stderr: %d %q", code, out)
	}
	if code, _, _ = run(t, "alloc", "logs", "-n", "3", "-address", addr, alloc.ID); code != ExitUsage {
		t.Fatalf("-n without -tail: exit %d, want usage", code)
	}
	if code, _, errOut = run(t, "alloc", "signal", "-s", "SIGHUP", "-address", addr, alloc.ID, "app"); code != ExitOK {
		t.Fatalf("alloc signal: %d %s", code, errOut)
	}
	agent.mu.Lock()
	signals := append([]string(nil), agent.signals...)
	agent.mu.Unlock()
	if len(signals) != 1 || signals[0] != "app:SIGHUP" {
		t.Fatalf("agent got signals %v", signals)
	}
	code, out, _ = run(t, "alloc", "exec", "-i=false", "-address", addr, alloc.ID, "ls", "-t", "/")
	if code != 7 || out != "ls -t /\n" {
		t.Fatalf("alloc exec: exit %d %q, want 7 and the command echoed", code, out)
	}

	// alloc stop: replaced
	code, out, errOut = run(t, "alloc", "stop", "-address", addr, alloc.ID[:8])
	if code != ExitOK || !strings.Contains(out, "stopped") {
		t.Fatalf("alloc stop: %d\n%s%s", code, out, errOut)
	}
	servertest.WaitFor(t, 10*time.Second, "stopped allocation replaced", func() bool {
		for _, a := range live() {
			if a.PreviousAllocation == alloc.ID {
				return len(live()) == 2
			}
		}
		return false
	})

	// node drain: waits for the drain; the node ends ineligible. Nothing
	// reports allocations running here, so the forced deadline moves them.
	code, out, errOut = run(t, "node", "drain", "-enable", "-yes", "-deadline", "1s", "-monitor-timeout", "20s", "-address", addr, n1.ID)
	if code != ExitOK || !strings.Contains(out, "drain strategy set") || !strings.Contains(out, "done") {
		t.Fatalf("node drain: %d\n%s%s", code, out, errOut)
	}
	node, _ := s.State().NodeByID(nil, n1.ID)
	if node.DrainStrategy != nil || node.SchedulingEligibility != structs.NodeSchedulingIneligible {
		t.Fatalf("node after drain = %+v", node)
	}
	for _, a := range live() {
		if a.NodeID == n1.ID {
			t.Fatalf("allocation %s still on the drained node", a.ID)
		}
	}
	if code, _, _ = run(t, "node", "drain", "-enable", "-force", "-no-deadline", "-address", addr, n1.ID); code != ExitUsage {
		t.Fatalf("-force with -no-deadline: exit %d, want usage", code)
	}
	if code, out, _ = run(t, "node", "drain", "-disable", "-address", addr, n1.ID); code != ExitOK || !strings.Contains(out, "unset") {
		t.Fatalf("node drain -disable: %d %s", code, out)
	}
	node, _ = s.State().NodeByID(nil, n1.ID)
	if node.SchedulingEligibility != structs.NodeSchedulingEligible {
		t.Fatalf("node after -disable = %+v", node)
	}
}
