package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/agent/clientapi"
	"github.com/berth-dev/berth/agent/hoststats"
	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// fakeAgent plays an agent's HTTP API: it records what reaches it and
// answers as design note 007 says agents do.
type fakeAgent struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
	// secondFrame is released once the test saw the first log frame, to
	// show the proxy streams instead of buffering.
	secondFrame chan struct{}
}

type recorded struct {
	method, path, query, body string
	header                    http.Header
}

func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	a := &fakeAgent{secondFrame: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/client/fs/logs/{alloc}", func(w http.ResponseWriter, r *http.Request) {
		a.record(r)
		enc := json.NewEncoder(w)
		enc.Encode(api.StreamFrame{Offset: 0, Data: []byte("first\n"), File: "alloc/logs/app.stdout.0"})
		w.(http.Flusher).Flush()
		select {
		case <-a.secondFrame:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			return
		}
		enc.Encode(api.StreamFrame{}) // heartbeat
		enc.Encode(api.StreamFrame{Offset: 6, Data: []byte("second\n"), File: "alloc/logs/app.stdout.0"})
	})
	mux.HandleFunc("PUT /v1/client/allocation/{alloc}/signal", func(w http.ResponseWriter, r *http.Request) {
		a.record(r)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("GET /v1/client/allocation/{alloc}/stats", func(w http.ResponseWriter, r *http.Request) {
		a.record(r)
		json.NewEncoder(w).Encode(api.AllocResourceUsage{ResourceUsage: &api.ResourceUsage{MemoryStats: &api.MemoryStats{RSS: 4096}}, Timestamp: 7})
	})
	mux.HandleFunc("GET /v1/client/stats", func(w http.ResponseWriter, r *http.Request) {
		a.record(r)
		json.NewEncoder(w).Encode(fakeHostStats)
	})
	up := websocket.Upgrader{}
	mux.HandleFunc("GET /v1/client/allocation/{alloc}/exec", func(w http.ResponseWriter, r *http.Request) {
		a.record(r)
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		// echo stdin to stdout until stdin closes, then exit 3
		for i := 0; i < 100; i++ {
			var in api.ExecStreamingInput
			if err := conn.ReadJSON(&in); err != nil {
				return
			}
			if in.Stdin == nil {
				continue
			}
			if in.Stdin.Close {
				break
			}
			conn.WriteJSON(api.ExecStreamingOutput{Stdout: &api.ExecStreamingIOOperation{Data: bytes.ToUpper(in.Stdin.Data)}})
		}
		conn.WriteJSON(api.ExecStreamingOutput{Stderr: &api.ExecStreamingIOOperation{Data: []byte("bye\n")}})
		conn.WriteJSON(api.ExecStreamingOutput{Exited: true, Result: &api.ExecStreamingExitResult{ExitCode: 3}})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	a.Start()
	t.Cleanup(a.Close)
	return a
}

func (a *fakeAgent) record(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Clone()})
}

func (a *fakeAgent) last(t *testing.T) recorded {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.requests) == 0 {
		t.Fatal("no request reached the agent")
	}
	return a.requests[len(a.requests)-1]
}

// proxyFixture places one allocation on a node whose HTTP address is a
// fake agent.
func proxyFixture(t *testing.T) (*server.Server, *api.Client, *fakeAgent, *structs.Allocation) {
	t.Helper()
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	agent := newFakeAgent(t)
	node := schedNode(1)
	node.HTTPAddr = agent.Listener.Addr().String()
	registerNode(t, cl, node)
	job := schedJob("web", 1)
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var alloc *structs.Allocation
	servertest.WaitFor(t, 10*time.Second, "allocation placed", func() bool {
		live := liveAllocs(t, s, job.ID)
		if len(live) == 1 {
			alloc = live[0]
		}
		return alloc != nil
	})
	return s, cl, agent, alloc
}

func TestClientProxyPassesRequestsThrough(t *testing.T) {
	s, cl, agent, alloc := proxyFixture(t)

	// signal: body, query and headers arrive unchanged
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.HTTPAddr()+"/v1/client/allocation/"+alloc.ID+"/signal?task=app&extra=1",
		strings.NewReader(`{"Task":"app","Signal":"SIGHUP"}`))
	req.Header.Set("X-Nomad-Token", "tok")
	req.Header.Set("X-Custom", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signal through the proxy: %d", resp.StatusCode)
	}
	got := agent.last(t)
	if got.method != http.MethodPut || got.path != "/v1/client/allocation/"+alloc.ID+"/signal" || got.query != "task=app&extra=1" ||
		got.body != `{"Task":"app","Signal":"SIGHUP"}` || got.header.Get("X-Nomad-Token") != "tok" || got.header.Get("X-Custom") != "kept" {
		t.Fatalf("agent received %+v", got)
	}
	if err := cl.Allocations().Signal(alloc.ID, "app", "SIGTERM", nil); err != nil {
		t.Fatalf("api Signal: %v", err)
	}
	if got := agent.last(t); !strings.Contains(got.body, `"Signal":"SIGTERM"`) {
		t.Fatalf("api Signal body = %s", got.body)
	}

	stats, err := cl.Allocations().Stats(alloc.ID, nil)
	if err != nil || stats.ResourceUsage == nil || stats.ResourceUsage.MemoryStats.RSS != 4096 || stats.Timestamp != 7 {
		t.Fatalf("stats = %+v, %v", stats, err)
	}

	// unknown allocation: 404, nothing proxied
	if _, err := cl.Allocations().Stats("00000000-0000-4000-8000-0000000000ff", nil); !api.IsNotFound(err) {
		t.Fatalf("stats of unknown alloc: %v", err)
	}
}

func TestClientProxyStreamsLogs(t *testing.T) {
	_, cl, agent, alloc := proxyFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	frames, errs := cl.AllocFS().Logs(ctx, alloc.ID, "app", api.LogTypeStdout, api.OriginStart, 0, true, nil)
	first := <-frames
	if first == nil || string(first.Data) != "first\n" {
		t.Fatalf("first frame = %+v (%v)", first, <-errs)
	}
	// the second frame is written only now: it arrives only if the proxy
	// streams
	close(agent.secondFrame)
	second := <-frames
	if second == nil || string(second.Data) != "second\n" || second.Offset != 6 {
		t.Fatalf("second frame = %+v", second)
	}
	if rest, ok := <-frames; ok {
		t.Fatalf("unexpected frame %+v", rest)
	}
	if err := <-errs; err != nil {
		t.Fatalf("stream error: %v", err)
	}
	if q := agent.last(t).query; !strings.Contains(q, "follow=true") || !strings.Contains(q, "task=app") || !strings.Contains(q, "type=stdout") {
		t.Fatalf("agent query = %s", q)
	}
}

func TestClientProxyPassesWebsocketExec(t *testing.T) {
	_, cl, agent, alloc := proxyFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code, err := cl.Allocations().Exec(ctx, alloc.ID, "app", false, []string{"/bin/sh", "-c", "cat"},
		strings.NewReader("hello exec"), &stdout, &stderr, nil, nil)
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	if code != 3 || stdout.String() != "HELLO EXEC" || stderr.String() != "bye\n" {
		t.Fatalf("exec = %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	got := agent.last(t)
	if !strings.Contains(got.query, "command=%5B%22%2Fbin%2Fsh%22") || got.header.Get("Upgrade") != "websocket" {
		t.Fatalf("agent received %+v", got)
	}
}

func TestClientProxyUnreachableAgent(t *testing.T) {
	_, cl, agent, alloc := proxyFixture(t)
	agent.Close()
	err := cl.Allocations().Signal(alloc.ID, "app", "SIGHUP", nil)
	if api.StatusCode(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("signal to a dead agent: %v", err)
	}
}

func TestClientProxyRefusesDownNode(t *testing.T) {
	const ttl = 200 * time.Millisecond
	c := servertest.NewCluster(t, 1, servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.MinHeartbeatTTL = ttl
		cfg.HeartbeatGrace = ttl / 2
		cfg.FailoverHeartbeatTTL = ttl
	}))
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	agent := newFakeAgent(t)
	node := schedNode(1)
	node.HTTPAddr = agent.Listener.Addr().String()
	registerNode(t, cl, node)
	job := schedJob("web", 1)
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 10*time.Second, "allocation placed", func() bool {
		cl.ClientNodes().Heartbeat(node.ID, node.SecretID, nil)
		all, _ := s.State().AllocsByJob(nil, structs.DefaultNamespace, job.ID)
		if len(all) > 0 {
			allocID = all[0].ID
		}
		return allocID != ""
	})
	servertest.WaitFor(t, 10*time.Second, "node down", func() bool {
		n, _ := s.State().NodeByID(nil, node.ID)
		return n.Status == structs.NodeStatusDown
	})
	err := cl.Allocations().Signal(allocID, "app", "SIGHUP", nil)
	if !api.IsConflict(err) {
		t.Fatalf("signal to an allocation on a down node: %v, want 409", err)
	}
	if _, err := cl.Nodes().Stats(node.ID, nil); !api.IsConflict(err) {
		t.Fatalf("host stats of a down node: %v, want 409", err)
	}
}

// fakeHostStats is what the fake agent answers GET /v1/client/stats with.
var fakeHostStats = api.HostStats{
	Memory:           &api.HostMemoryStats{Total: 8 << 30, Available: 6 << 30, Used: 2 << 30, Free: 5 << 30},
	CPU:              []*api.HostCPUStats{{CPU: "cpu0", User: 12.5, System: 2.5, Idle: 85}},
	DiskStats:        []*api.HostDiskStats{{Device: "/dev/vda", Mountpoint: "/", Size: 100, Used: 40, Available: 60, UsedPercent: 40, InodesUsedPercent: 3}},
	AllocDirStats:    &api.HostDiskStats{Device: "/dev/vda", Mountpoint: "/", Size: 100},
	Uptime:           3600,
	Timestamp:        1_700_000_000_000_000_000,
	CPUTicksConsumed: 300,
}

// statsFixture registers one node whose HTTP address is handler.
func statsFixture(t *testing.T, handler http.Handler) (*server.Server, *api.Client, *structs.Node) {
	t.Helper()
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	agent := &httptest.Server{Listener: l, Config: &http.Server{Handler: handler}}
	agent.Start()
	t.Cleanup(agent.Close)
	node := schedNode(1)
	node.HTTPAddr = l.Addr().String()
	registerNode(t, cl, node)
	return s, cl, node
}

func TestClientProxyHostStats(t *testing.T) {
	agent := newFakeAgent(t)
	s, cl, node := statsFixture(t, agent.Config.Handler)

	got, err := cl.Nodes().Stats(node.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Memory.Total != 8<<30 || len(got.CPU) != 1 || got.CPU[0].User != 12.5 || got.DiskStats[0].UsedPercent != 40 ||
		got.Uptime != 3600 || got.Timestamp != fakeHostStats.Timestamp || got.CPUTicksConsumed != 300 {
		t.Fatalf("stats through the proxy = %+v", got)
	}
	if r := agent.last(t); r.path != "/v1/client/stats" || r.query != "node_id="+node.ID {
		t.Fatalf("agent received %+v", r)
	}

	// Nomad's own client decodes the same answer
	ns, err := nomadClient(t, "http://"+s.HTTPAddr()).Nodes().Stats(node.ID, nil)
	if err != nil {
		t.Fatalf("nomad client: %v", err)
	}
	if ns.Memory.Used != 2<<30 || ns.CPU[0].Idle != 85 || ns.AllocDirStats.Mountpoint != "/" || ns.DiskStats[0].InodesUsedPercent != 3 {
		t.Fatalf("nomad client stats = %+v", ns)
	}

	agent.mu.Lock()
	reached := len(agent.requests)
	agent.mu.Unlock()
	// no node_id: 400 with a message saying so
	resp, err := http.Get("http://" + s.HTTPAddr() + "/v1/client/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "node_id") {
		t.Fatalf("without node_id: %d %q", resp.StatusCode, body)
	}
	// unknown node: 404
	if _, err := cl.Nodes().Stats("00000000-0000-4000-8000-0000000000ff", nil); !api.IsNotFound(err) {
		t.Fatalf("stats of an unknown node: %v", err)
	}
	agent.mu.Lock()
	defer agent.mu.Unlock()
	if len(agent.requests) != reached {
		t.Fatalf("refused requests reached the agent: %+v", agent.requests[reached:])
	}
}

func TestClientProxyHostStatsUnreachableAgent(t *testing.T) {
	agent := newFakeAgent(t)
	_, cl, node := statsFixture(t, agent.Config.Handler)
	// the node's address now refuses connections
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node.HTTPAddr = l.Addr().String()
	l.Close()
	registerNode(t, cl, node)
	_, err = cl.Nodes().Stats(node.ID, nil)
	if api.StatusCode(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("stats of an unreachable agent: %v", err)
	}
}

// TestClientProxyHostStatsFromAgentHandler puts the agent's own handler and
// collector behind the proxy and reads them with Nomad's client.
func TestClientProxyHostStatsFromAgentHandler(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no procfs:", err)
	}
	node := schedNode(1)
	collector := hoststats.New(hoststats.Options{DataDir: t.TempDir()})
	s, _, _ := statsFixture(t, clientapi.Handler(nil, nil, clientapi.WithHostStats(collector, node.ID)))
	got, err := nomadClient(t, "http://"+s.HTTPAddr()).Nodes().Stats(node.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Memory == nil || got.Memory.Total == 0 || len(got.CPU) == 0 || got.AllocDirStats == nil || got.AllocDirStats.Size == 0 {
		t.Fatalf("host stats through the proxy = %+v", got)
	}
}
