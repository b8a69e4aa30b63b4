package simnodes

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// fakeServer implements the four /v1/client endpoints over an in-memory
// fleet, checking the node secret as the real server does.
type fakeServer struct {
	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed and replaced on every change
	nodes   map[string]*structs.Node
	hbs     map[string]int
	allocs  map[string]*structs.Allocation
	// mixedBatches counts update requests carrying other nodes' allocs.
	mixedBatches int
	// failUpdates is how many update requests to refuse with a 503 before
	// applying them again: a transient server error.
	failUpdates int
	maxConns    int
	conns       int
}

func newFakeServer() *fakeServer {
	return &fakeServer{
		changed: make(chan struct{}),
		nodes:   map[string]*structs.Node{},
		hbs:     map[string]int{},
		allocs:  map[string]*structs.Allocation{},
	}
}

func (f *fakeServer) bump() {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeServer) authOK(r *http.Request, nodeID string) bool {
	n := f.nodes[nodeID]
	return n != nil && n.SecretID == r.Header.Get(api.HeaderNodeSecret)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	writeJSON := func(v any) {
		w.Header().Set(api.HeaderIndex, strconv.FormatUint(f.index, 10))
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == "PUT" && path == "/v1/client/node/register":
		var req structs.NodeRegisterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Node == nil {
			http.Error(w, "bad body", 400)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if req.Node.SecretID != r.Header.Get(api.HeaderNodeSecret) {
			http.Error(w, "secret mismatch", 403)
			return
		}
		f.nodes[req.Node.ID] = req.Node
		f.bump()
		writeJSON(&structs.NodeHeartbeatResponse{HeartbeatTTL: 400 * time.Millisecond, Index: f.index})
	case r.Method == "PUT" && strings.HasSuffix(path, "/heartbeat"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/client/node/"), "/heartbeat")
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.nodes[id] == nil {
			http.Error(w, "no such node", 404)
			return
		}
		if !f.authOK(r, id) {
			http.Error(w, "secret mismatch", 403)
			return
		}
		f.nodes[id].Status = structs.NodeStatusReady
		f.hbs[id]++
		writeJSON(&structs.NodeHeartbeatResponse{HeartbeatTTL: 400 * time.Millisecond})
	case r.Method == "GET" && strings.HasSuffix(path, "/allocations"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/client/node/"), "/allocations")
		minIndex, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
		wait := time.Second
		if d, err := time.ParseDuration(r.URL.Query().Get("wait")); err == nil {
			wait = d
		}
		timeout := time.NewTimer(wait)
		defer timeout.Stop()
		f.mu.Lock()
		if !f.authOK(r, id) {
			f.mu.Unlock()
			http.Error(w, "secret mismatch", 403)
			return
		}
		for minIndex > 0 && f.index <= minIndex {
			ch := f.changed
			f.mu.Unlock()
			select {
			case <-ch:
			case <-timeout.C:
				minIndex = 0 // timed out: answer as is, as the servers do
			case <-r.Context().Done():
				return
			}
			f.mu.Lock()
		}
		var out []*structs.Allocation
		for _, a := range f.allocs {
			if a.NodeID == id {
				c := *a
				out = append(out, &c)
			}
		}
		writeJSON(out)
		f.mu.Unlock()
	case r.Method == "PUT" && path == "/v1/client/allocations/update":
		var req structs.AllocClientUpdateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad body", 400)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.failUpdates > 0 {
			f.failUpdates--
			http.Error(w, "no leader", http.StatusServiceUnavailable)
			return
		}
		secret := r.Header.Get(api.HeaderNodeSecret)
		for _, u := range req.Allocs {
			a := f.allocs[u.ID]
			if a == nil {
				continue
			}
			if f.nodes[a.NodeID].SecretID != secret {
				f.mixedBatches++
			}
			a.ClientStatus = u.ClientStatus
			a.TaskStates = u.TaskStates
		}
		f.bump()
		writeJSON(map[string]uint64{"Index": f.index})
	default:
		http.Error(w, "no such endpoint "+path, 404)
	}
}

// place puts count allocations of a one-task job on the given nodes.
func (f *fakeServer) place(nodeIDs []string, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	job := &structs.Job{ID: "web", TaskGroups: []*structs.TaskGroup{{Name: "web", Tasks: []*structs.Task{{Name: "nginx"}}}}}
	for i := range count {
		id := "alloc-" + strconv.Itoa(i)
		f.allocs[id] = &structs.Allocation{
			ID: id, NodeID: nodeIDs[i%len(nodeIDs)], JobID: "web", Job: job, TaskGroup: "web",
			DesiredStatus: structs.AllocDesiredStatusRun, ClientStatus: structs.AllocClientStatusPending,
		}
	}
	f.bump()
}

func (f *fakeServer) countStatus(status string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.allocs {
		if a.ClientStatus == status {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds; on timeout it fails with the
// simulator's counters, which tell a lost update from a stalled poll.
func waitFor(t *testing.T, sim *Simulator, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; stats %+v", timeout, what, sim.Stats())
}

func TestSimulatorLifecycle(t *testing.T) {
	for _, perNode := range []bool{false, true} {
		t.Run("distinct-secrets="+strconv.FormatBool(perNode), func(t *testing.T) {
			t.Parallel()
			f := newFakeServer()
			srv := httptest.NewUnstartedServer(f)
			var connMu sync.Mutex
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				connMu.Lock()
				defer connMu.Unlock()
				switch st {
				case http.StateNew:
					f.conns++
					f.maxConns = max(f.maxConns, f.conns)
				case http.StateClosed, http.StateHijacked:
					f.conns--
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)

			const nodes = 60
			sim, err := New(Config{
				Address: srv.URL, Nodes: nodes, Seed: 1,
				Watchers: 8, WatchWait: 300 * time.Millisecond, MinPollInterval: 20 * time.Millisecond,
				AckBatch: 16, AckInterval: 5 * time.Millisecond, DistinctSecrets: perNode,
				// every failed request, injected or not, shows in a failed run
				Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sim.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			select {
			case <-sim.Ready():
			case err := <-done:
				t.Fatalf("Run returned before ready: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatalf("not ready: %+v", sim.Stats())
			}
			f.mu.Lock()
			registered := len(f.nodes)
			f.mu.Unlock()
			if registered != nodes {
				t.Fatalf("server has %d nodes, want %d", registered, nodes)
			}

			f.place(sim.NodeIDs(), 150)
			waitFor(t, sim, 10*time.Second, "all allocations running", func() bool {
				return f.countStatus(structs.AllocClientStatusRunning) == 150
			})
			f.mu.Lock()
			ts := f.allocs["alloc-0"].TaskStates["nginx"]
			f.mu.Unlock()
			if ts == nil || ts.State != "running" {
				t.Errorf("task state = %+v, want running", ts)
			}

			// The servers stop one: the node reports it complete, and
			// reports it again when the first update fails.
			f.mu.Lock()
			f.failUpdates = 1
			f.allocs["alloc-7"].DesiredStatus = structs.AllocDesiredStatusStop
			f.bump()
			f.mu.Unlock()
			waitFor(t, sim, 10*time.Second, "stopped allocation complete", func() bool {
				return f.countStatus(structs.AllocClientStatusComplete) == 1
			})

			// Heartbeats keep coming within the 400ms TTL.
			time.Sleep(500 * time.Millisecond)
			f.mu.Lock()
			for id, n := range f.hbs {
				if n < 2 {
					t.Errorf("node %s heartbeated %d times", id, n)
					break
				}
			}
			mixed := f.mixedBatches
			f.mu.Unlock()
			if perNode && mixed != 0 {
				t.Errorf("%d updates carried other nodes' allocations with DistinctSecrets", mixed)
			}

			st := sim.Stats()
			// One refused update is injected; a loaded machine may add a
			// transient one, which the simulator reports again as well.
			if st.AllocsRunning != 150 || st.AllocsStopped != 1 || st.Ready != nodes || st.AckErrors < 1 {
				t.Errorf("stats = %+v", st)
			}
			if st.AckErrors > 1 {
				t.Logf("%d update requests failed, 1 injected", st.AckErrors)
			}
			if st.AckRequests >= 151 && !perNode {
				t.Errorf("updates were not batched: %d requests", st.AckRequests)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil on cancel", err)
				}
				done <- nil
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			connMu.Lock()
			defer connMu.Unlock()
			// Registration, heartbeats, watchers and acks share one pool.
			if limit := 8 + 16 + 4 + 32 + 8; f.maxConns > limit {
				t.Errorf("%d connections at once, pool limit %d", f.maxConns, limit)
			}
		})
	}
}

func TestRunFailsWithoutEndpoints(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	sim, err := New(Config{Address: srv.URL, Nodes: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.Run(ctx); !api.IsNotFound(err) {
		t.Fatalf("Run = %v, want a 404", err)
	}
}

func TestBuildNode(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	dcs := []string{"dc1", "dc2", "dc3"}
	a := BuildNode(4, rand.New(rand.NewPCG(1, 4)), dcs, []string{"general"}, 20, now)
	b := BuildNode(4, rand.New(rand.NewPCG(1, 4)), dcs, []string{"general"}, 20, now)
	if a.ID != b.ID || a.SecretID != b.SecretID || a.ID == a.SecretID {
		t.Errorf("IDs not reproducible or not distinct: %s %s / %s %s", a.ID, a.SecretID, b.ID, b.SecretID)
	}
	if len(a.ID) != 36 {
		t.Errorf("ID %q is not UUID-shaped", a.ID)
	}
	if a.Datacenter != "dc2" || a.Meta["rack"] != "r04" || a.NodeClass != "general" {
		t.Errorf("dc=%s rack=%s class=%s", a.Datacenter, a.Meta["rack"], a.NodeClass)
	}
	for _, k := range []string{"kernel.name", "os.name", "cpu.arch", "unique.hostname", "unique.network.ip-address", "driver.docker", "driver.exec", "nomad.version"} {
		if a.Attributes[k] == "" {
			t.Errorf("attribute %s missing", k)
		}
	}
	if ip := a.Attributes["unique.network.ip-address"]; !strings.HasPrefix(ip, "127.") || ip == fakeIP(5) {
		t.Errorf("ip %q", ip)
	}
	if r := a.NodeResources; r.Cpu.CpuShares != 4000 || r.Memory.MemoryMB != 8192 || r.MinDynamicPort != 20000 || r.MaxDynamicPort != 32000 {
		t.Errorf("resources %+v", r)
	}
	for _, d := range []string{"docker", "exec"} {
		if info := a.Drivers[d]; info == nil || !info.Detected || !info.Healthy {
			t.Errorf("driver %s: %+v", d, info)
		}
	}
	seen := map[string]bool{}
	for i := range 70000 {
		ip := fakeIP(i)
		if seen[ip] {
			t.Fatalf("ip %s repeats at %d", ip, i)
		}
		seen[ip] = true
	}
}
