package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/structs"
)

// These tests need to write allocations directly (no scheduler involved),
// so they run inside the package with a server of their own.

func newTestServer(t *testing.T, fn func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = "hb-test"
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1"
	cfg.HTTPPort, cfg.RaftPort, cfg.GossipPort = 0, 0, 0
	cfg.BootstrapExpect = 1
	cfg.GossipLocal = true
	cfg.RaftHeartbeatTimeout = 400 * time.Millisecond
	cfg.RaftElectionTimeout = 400 * time.Millisecond
	cfg.RaftLeaderLeaseTimeout = 200 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	// these tests look at the evaluations the endpoints create, not at
	// what the scheduler makes of them
	cfg.NumSchedulers = -1
	if fn != nil {
		fn(cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	deadline := time.Now().Add(15 * time.Second)
	for !s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader after 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustRaftApply(t *testing.T, s *Server, typ fsm.MessageType, cmd any) uint64 {
	t.Helper()
	index, _, err := s.raftApply(typ, cmd)
	if err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
	return index
}

func hbTestNode(i int) *structs.Node {
	return &structs.Node{
		ID: fmt.Sprintf("4ea7b000-0000-4000-8000-%012d", i), SecretID: fmt.Sprintf("secret-%d", i),
		Name: fmt.Sprintf("n%d", i), Datacenter: "dc1", NodePool: "default", Status: structs.NodeStatusReady,
		NodeResources: &structs.NodeResources{Cpu: structs.NodeCpuResources{CpuShares: 1000}, Memory: structs.NodeMemoryResources{MemoryMB: 1024}},
	}
}

func hbTestJob(id, typ string, priority int) *structs.Job {
	j := &structs.Job{ID: id, Name: id, Namespace: structs.DefaultNamespace, Type: typ, Priority: priority,
		TaskGroups: []*structs.TaskGroup{{Name: "g", Count: 1, Tasks: []*structs.Task{{Name: "t", Driver: "docker"}}}}}
	j.Canonicalize()
	return j
}

func hbTestAlloc(id string, job *structs.Job, nodeID, client string) *structs.Allocation {
	return &structs.Allocation{ID: id, Namespace: job.Namespace, JobID: job.ID, Job: job, EvalID: "e-" + id, NodeID: nodeID,
		TaskGroup: "g", DesiredStatus: structs.AllocDesiredStatusRun, ClientStatus: client}
}

// TestMissedHeartbeatCreatesNodeUpdateEvals: the entry that marks a node
// down carries a node-update eval (job type and priority) for every job
// with non-terminal allocs on it, and none for the others.
func TestMissedHeartbeatCreatesNodeUpdateEvals(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) {
		c.MinHeartbeatTTL, c.HeartbeatGrace, c.FailoverHeartbeatTTL = 200*time.Millisecond, 100*time.Millisecond, time.Hour
	})
	node, other := hbTestNode(1), hbTestNode(2)
	web := hbTestJob("web", structs.JobTypeService, 80)
	batch := hbTestJob("report", structs.JobTypeBatch, 30)
	done := hbTestJob("done", structs.JobTypeBatch, 50)
	elsewhere := hbTestJob("elsewhere", structs.JobTypeService, 50)
	mustRaftApply(t, s, fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: node})
	mustRaftApply(t, s, fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: other})
	for _, j := range []*structs.Job{web, batch, done, elsewhere} {
		mustRaftApply(t, s, fsm.JobRegisterType, &fsm.JobRegisterCommand{Job: j})
	}
	mustRaftApply(t, s, fsm.AllocUpsertType, &fsm.AllocUpsertCommand{Allocs: []*structs.Allocation{
		hbTestAlloc("a1", web, node.ID, structs.AllocClientStatusRunning),
		hbTestAlloc("a2", web, node.ID, structs.AllocClientStatusPending),
		hbTestAlloc("a3", batch, node.ID, structs.AllocClientStatusRunning),
		hbTestAlloc("a4", done, node.ID, structs.AllocClientStatusComplete),
		hbTestAlloc("a5", elsewhere, other.ID, structs.AllocClientStatusRunning),
	}})
	// node 2 keeps heartbeating; node 1 heartbeats once and goes silent
	s.resetHeartbeatTimer(node.ID)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			s.resetHeartbeatTimer(other.ID)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	waitFor(t, 10*time.Second, "node down", func() bool {
		n, _ := s.State().NodeByID(nil, node.ID)
		return n.Status == structs.NodeStatusDown
	})
	n, _ := s.State().NodeByID(nil, node.ID)
	got := map[string]*structs.Evaluation{}
	evals, _ := s.State().Evals(nil, structs.AllNamespacesSentinel, "")
	for _, e := range evals {
		if e.TriggeredBy == structs.EvalTriggerNodeUpdate {
			if got[e.JobID] != nil {
				t.Errorf("two node-update evals for %s", e.JobID)
			}
			got[e.JobID] = e
		}
	}
	if len(got) != 2 || got["web"] == nil || got["report"] == nil {
		t.Fatalf("node-update evals for jobs %v, want web and report", keys(got))
	}
	for id, want := range map[string]*structs.Job{"web": web, "report": batch} {
		e := got[id]
		if e.Type != want.Type || e.Priority != want.Priority || e.NodeID != node.ID || e.Status != structs.EvalStatusPending ||
			e.CreateIndex != n.ModifyIndex || e.ID == "" {
			t.Errorf("eval for %s = %+v (node modify index %d)", id, e, n.ModifyIndex)
		}
	}
	if o, _ := s.State().NodeByID(nil, other.ID); o.Status != structs.NodeStatusReady {
		t.Errorf("heartbeating node = %s", o.Status)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func clientReq(t *testing.T, s *Server, method, path, secret, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.HTTPAddr()+path, strings.NewReader(body))
	req.Header.Set(headerNodeSecret, secret)
	res, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestClientAllocations: the node's allocations with their job, as a
// blocking query woken by writes to this node's allocations only; and the
// client update path (only client fields, alloc-failure evals).
func TestClientAllocations(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	node, other := hbTestNode(1), hbTestNode(2)
	web := hbTestJob("web", structs.JobTypeService, 60)
	mustRaftApply(t, s, fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: node})
	mustRaftApply(t, s, fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: other})
	mustRaftApply(t, s, fsm.JobRegisterType, &fsm.JobRegisterCommand{Job: web})
	placed := hbTestAlloc("a1", web, node.ID, structs.AllocClientStatusPending)
	placed.Job = nil // the plan's Job is attached by the FSM
	first := mustRaftApply(t, s, fsm.ApplyPlanResultsType, &fsm.ApplyPlanResultsCommand{Job: web, AllocsUpdated: []*structs.Allocation{
		placed, hbTestAlloc("b1", web, other.ID, structs.AllocClientStatusPending)}})

	path := "/v1/client/node/" + node.ID + "/allocations"
	res, body := clientReq(t, s, "GET", path, node.SecretID, "")
	if res.StatusCode != 200 || res.Header.Get(headerIndex) != fmt.Sprint(first) ||
		!strings.Contains(body, `"ID":"a1"`) || strings.Contains(body, `"ID":"b1"`) || !strings.Contains(body, `"Job":{`) {
		t.Fatalf("allocations: %d index %s %s", res.StatusCode, res.Header.Get(headerIndex), body)
	}
	if res, _ := clientReq(t, s, "GET", path, other.SecretID, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("another node's secret: %d", res.StatusCode)
	}
	// the stub form: the same allocations and index, without jobs
	res, body = clientReq(t, s, "GET", path+"?stubs=true", node.SecretID, "")
	var stubs []clientAllocStub
	if err := json.Unmarshal([]byte(body), &stubs); err != nil || res.StatusCode != 200 {
		t.Fatalf("stubs: %d %v %s", res.StatusCode, err, body)
	}
	if res.Header.Get(headerIndex) != fmt.Sprint(first) || strings.Contains(body, `"Job"`) || len(stubs) != 1 ||
		stubs[0] != (clientAllocStub{ID: "a1", AllocModifyIndex: first, ModifyIndex: first,
			DesiredStatus: structs.AllocDesiredStatusRun, ClientStatus: structs.AllocClientStatusPending}) {
		t.Fatalf("stubs: index %s %+v %s", res.Header.Get(headerIndex), stubs, body)
	}
	if res, _ := clientReq(t, s, "GET", path+"?stubs=true", other.SecretID, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("stubs with another node's secret: %d", res.StatusCode)
	}

	// a blocking query is not woken by another node's allocations
	type result struct {
		res  *http.Response
		body string
		at   time.Time
	}
	done := make(chan result, 1)
	go func() {
		res, body := clientReq(t, s, "GET", fmt.Sprintf("%s?index=%d&wait=10s", path, first), node.SecretID, "")
		done <- result{res, body, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	mustRaftApply(t, s, fsm.ApplyPlanResultsType, &fsm.ApplyPlanResultsCommand{Job: web, AllocsUpdated: []*structs.Allocation{
		hbTestAlloc("b2", web, other.ID, structs.AllocClientStatusPending)}})
	select {
	case r := <-done:
		t.Fatalf("blocking query woken by another node's alloc: %s", r.body)
	case <-time.After(300 * time.Millisecond):
	}
	stopAt := time.Now()
	stopped := mustRaftApply(t, s, fsm.ApplyPlanResultsType, &fsm.ApplyPlanResultsCommand{
		AllocsStopped: []*structs.Allocation{{ID: "a1", DesiredDescription: "job stopped"}}})
	select {
	case r := <-done:
		if r.res.StatusCode != 200 || r.res.Header.Get(headerIndex) != fmt.Sprint(stopped) || !strings.Contains(r.body, `"DesiredStatus":"stop"`) {
			t.Fatalf("woken query: %d index %s %s", r.res.StatusCode, r.res.Header.Get(headerIndex), r.body)
		}
		if r.at.Sub(stopAt) > 5*time.Second {
			t.Fatalf("woken after %s", r.at.Sub(stopAt))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query not woken by a stop of the node's alloc")
	}

	// client updates: a1 failed (stopped: no eval), b1 failed (eval)
	upd := `{"Allocs":[{"ID":"b1","ClientStatus":"failed","ClientDescription":"oom","NodeID":"forged","DesiredStatus":"stop"},{"ID":"gone","ClientStatus":"running"}]}`
	res, body = clientReq(t, s, "PUT", "/v1/client/allocations/update", other.SecretID, upd)
	if res.StatusCode != 200 || !strings.Contains(body, `"Index":`) {
		t.Fatalf("alloc update: %d %s", res.StatusCode, body)
	}
	b1, _ := s.State().AllocByID(memdb.NewWatchSet(), "b1")
	if b1.ClientStatus != structs.AllocClientStatusFailed || b1.ClientDescription != "oom" || b1.NodeID != other.ID ||
		b1.DesiredStatus != structs.AllocDesiredStatusRun || b1.ModifyTime == 0 {
		t.Fatalf("updated alloc = %+v", b1)
	}
	evals, _ := s.State().EvalsByJob(nil, web.Namespace, web.ID)
	var failures int
	for _, e := range evals {
		if e.TriggeredBy == structs.EvalTriggerRetryFailedAlloc && e.Priority == 60 && e.Type == structs.JobTypeService {
			failures++
		}
	}
	if failures != 1 {
		t.Fatalf("alloc-failure evals = %d, want 1: %+v", failures, evals)
	}
	// a node cannot report another node's allocations
	if res, body := clientReq(t, s, "PUT", "/v1/client/allocations/update", node.SecretID, `{"Allocs":[{"ID":"b1","ClientStatus":"running"}]}`); res.StatusCode != http.StatusForbidden {
		t.Fatalf("update of another node's alloc: %d %s", res.StatusCode, body)
	}
}

func TestHeartbeatTTLScalesWithNodes(t *testing.T) {
	t.Parallel()
	cfg := &Config{MinHeartbeatTTL: 10 * time.Second, MaxHeartbeatsPerSecond: 50}
	for nodes, base := range map[int]time.Duration{0: 10 * time.Second, 100: 10 * time.Second, 5000: 100 * time.Second, 10000: 200 * time.Second} {
		for range 20 {
			if ttl := heartbeatTTL(cfg, nodes); ttl < base || ttl >= 2*base {
				t.Fatalf("TTL for %d nodes = %s, want [%s, %s)", nodes, ttl, base, 2*base)
			}
		}
	}
}
