package server_test

// Compatibility tests: berth's /v1 API driven by the official Nomad Go
// client (github.com/hashicorp/nomad/api) and by raw HTTP, against real
// in-process servers. Job tests live in nomadapi_jobs_test.go.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// nomadClient returns an official Nomad API client for a base URL.
func nomadClient(t testing.TB, addr string) *nomad.Client {
	t.Helper()
	c, err := nomad.NewClient(&nomad.Config{Address: addr, HttpClient: &http.Client{Timeout: 15 * time.Second}})
	if err != nil {
		t.Fatalf("nomad client for %s: %v", addr, err)
	}
	return c
}

// nomadServiceJob builds a service job the way Nomad's own tooling does.
func nomadServiceJob(id string) *nomad.Job {
	job := nomad.NewServiceJob(id, id+"-name", "global", 60)
	job.AddDatacenter("dc1")
	task := nomad.NewTask("app", "docker").
		SetConfig("image", "redis:7").
		SetConfig("args", []string{"--port", "6379"})
	job.AddTaskGroup(nomad.NewTaskGroup("web", 2).AddTask(task))
	return job
}

// nomadBatchJob builds a batch job.
func nomadBatchJob(id string) *nomad.Job {
	job := nomad.NewBatchJob(id, id, "global", 40)
	job.AddDatacenter("dc1")
	job.AddDatacenter("dc2")
	task := nomad.NewTask("run", "exec").SetConfig("command", "/bin/true")
	job.AddTaskGroup(nomad.NewTaskGroup("once", 1).AddTask(task))
	return job
}

// statusCode extracts the HTTP status from an error of the Nomad client.
func statusCode(t testing.TB, err error) int {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var ure nomad.UnexpectedResponseError
	if !errors.As(err, &ure) || !ure.HasStatusCode() {
		t.Fatalf("error %q (%T) carries no HTTP status", err, err)
	}
	return ure.StatusCode()
}

// rawDo sends one raw HTTP request and returns status, headers and body.
func rawDo(t testing.TB, method, url string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// checkMetaHeaders asserts the three headers every Nomad client parses.
func checkMetaHeaders(t testing.TB, what string, h http.Header) {
	t.Helper()
	if v := h.Get("X-Nomad-Index"); v == "" {
		t.Errorf("%s: missing X-Nomad-Index", what)
	} else if idx, err := strconv.ParseUint(v, 10, 64); err != nil || idx == 0 {
		t.Errorf("%s: X-Nomad-Index %q is not a positive integer", what, v)
	}
	if v := h.Get("X-Nomad-KnownLeader"); v != "true" {
		t.Errorf("%s: X-Nomad-KnownLeader = %q, want \"true\"", what, v)
	}
	if v := h.Get("X-Nomad-LastContact"); v == "" {
		t.Errorf("%s: missing X-Nomad-LastContact", what)
	} else if _, err := strconv.ParseUint(v, 10, 64); err != nil {
		t.Errorf("%s: X-Nomad-LastContact %q is not a non-negative integer", what, v)
	}
}

func hasNamespace(nss []*nomad.Namespace, name string) bool {
	for _, ns := range nss {
		if ns.Name == name {
			return true
		}
	}
	return false
}

// TestNomadCompatSingleServer covers the status, agent, operator, node,
// allocation and namespace endpoints of one server.
func TestNomadCompatSingleServer(t *testing.T) {
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers())
	_, leader := c.Leader()
	addr := c.HTTPAddrs()[0]
	nc := nomadClient(t, addr)

	t.Run("StatusLeader", func(t *testing.T) {
		got, err := nc.Status().Leader()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := net.SplitHostPort(got); err != nil {
			t.Fatalf("leader %q is not ip:port: %v", got, err)
		}
		if got != leader.RaftAddr() {
			t.Fatalf("leader = %q, want the raft address %q", got, leader.RaftAddr())
		}
	})

	t.Run("StatusPeers", func(t *testing.T) {
		peers, err := nc.Status().Peers()
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) != 1 || peers[0] != leader.RaftAddr() {
			t.Fatalf("peers = %v, want [%s]", peers, leader.RaftAddr())
		}
	})

	t.Run("AgentSelf", func(t *testing.T) {
		self, err := nc.Agent().Self()
		if err != nil {
			t.Fatal(err)
		}
		if self.Member.Name != "server-1" || self.Member.Status != "alive" {
			t.Errorf("member = %+v, want server-1 alive", self.Member)
		}
		if self.Member.Addr == "" || self.Member.Port == 0 {
			t.Errorf("member has no gossip address: %+v", self.Member)
		}
		if self.Config["Region"] != "global" || self.Config["Datacenter"] != "dc1" {
			t.Errorf("config region/dc = %v/%v", self.Config["Region"], self.Config["Datacenter"])
		}
		if self.Stats["nomad"]["leader"] != "true" || self.Stats["nomad"]["server"] != "true" {
			t.Errorf("nomad stats = %v", self.Stats["nomad"])
		}
		if self.Stats["raft"]["state"] != "Leader" {
			t.Errorf("raft state = %q, want Leader", self.Stats["raft"]["state"])
		}
		// The client's cached lookups come from the same endpoint.
		if name, err := nc.Agent().NodeName(); err != nil || name != "server-1" {
			t.Errorf("NodeName() = %q, %v", name, err)
		}
		if dc, err := nc.Agent().Datacenter(); err != nil || dc != "dc1" {
			t.Errorf("Datacenter() = %q, %v", dc, err)
		}
		if r, err := nc.Agent().Region(); err != nil || r != "global" {
			t.Errorf("Region() = %q, %v", r, err)
		}
	})

	t.Run("AgentMembers", func(t *testing.T) {
		m, err := nc.Agent().Members()
		if err != nil {
			t.Fatal(err)
		}
		if m.ServerName != "server-1" || m.ServerRegion != "global" || m.ServerDC != "dc1" {
			t.Errorf("members header = %q %q %q", m.ServerName, m.ServerRegion, m.ServerDC)
		}
		if len(m.Members) != 1 || m.Members[0].Name != "server-1" || m.Members[0].Status != "alive" {
			t.Fatalf("members = %+v", m.Members)
		}
	})

	t.Run("AgentHealth", func(t *testing.T) {
		h, err := nc.Agent().Health()
		if err != nil {
			t.Fatal(err)
		}
		if h.Server == nil || !h.Server.Ok {
			t.Fatalf("server health = %+v", h.Server)
		}
		if h.Client != nil {
			t.Errorf("a server-only agent reports client health %+v", h.Client)
		}
	})

	t.Run("OperatorRaftConfiguration", func(t *testing.T) {
		cfg, err := nc.Operator().RaftGetConfiguration(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Servers) != 1 {
			t.Fatalf("servers = %+v", cfg.Servers)
		}
		s := cfg.Servers[0]
		if !s.Leader || !s.Voter || s.Address != leader.RaftAddr() || s.ID != leader.NodeID() || s.Node != "server-1" {
			t.Fatalf("server = %+v", s)
		}
	})

	t.Run("NodesAndAllocationsEmpty", func(t *testing.T) {
		nodes, qm, err := nc.Nodes().List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if nodes == nil || len(nodes) != 0 {
			t.Errorf("nodes = %#v, want an empty list", nodes)
		}
		if !qm.KnownLeader {
			t.Error("nodes: KnownLeader false")
		}
		allocs, _, err := nc.Allocations().List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if allocs == nil || len(allocs) != 0 {
			t.Errorf("allocs = %#v, want an empty list", allocs)
		}
		for _, path := range []string{"/v1/nodes", "/v1/allocations", "/v1/evaluations"} {
			code, h, body := rawDo(t, "GET", addr+path, nil)
			if code != 200 || strings.TrimSpace(body) != "[]" {
				t.Errorf("GET %s = %d %q, want 200 []", path, code, body)
			}
			checkMetaHeaders(t, path, h)
		}
	})

	t.Run("Namespaces", func(t *testing.T) {
		nss, qm, err := nc.Namespaces().List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !hasNamespace(nss, "default") {
			t.Fatalf("namespaces = %+v, want default", nss)
		}
		if qm.LastIndex == 0 {
			t.Error("namespace list: LastIndex 0")
		}

		wm, err := nc.Namespaces().Register(&nomad.Namespace{
			Name: "team-a", Description: "team A", Meta: map[string]string{"owner": "a"},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if wm.LastIndex == 0 {
			t.Error("namespace register: LastIndex 0")
		}
		ns, _, err := nc.Namespaces().Info("team-a", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ns.Name != "team-a" || ns.Description != "team A" || ns.Meta["owner"] != "a" || ns.CreateIndex == 0 {
			t.Fatalf("namespace = %+v", ns)
		}

		// Register again updates in place.
		if _, err := nc.Namespaces().Register(&nomad.Namespace{Name: "team-a", Description: "renamed"}, nil); err != nil {
			t.Fatal(err)
		}
		ns2, _, err := nc.Namespaces().Info("team-a", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ns2.Description != "renamed" || ns2.CreateIndex != ns.CreateIndex || ns2.ModifyIndex <= ns.ModifyIndex {
			t.Fatalf("updated namespace = %+v (was %+v)", ns2, ns)
		}

		if _, err := nc.Namespaces().Delete("team-a", nil); err != nil {
			t.Fatal(err)
		}
		_, _, err = nc.Namespaces().Info("team-a", nil)
		if code := statusCode(t, err); code != http.StatusNotFound {
			t.Fatalf("info after delete: status %d, want 404", code)
		}
		nss, _, err = nc.Namespaces().List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if hasNamespace(nss, "team-a") {
			t.Fatalf("deleted namespace still listed: %+v", nss)
		}
		if _, err := nc.Namespaces().Delete("team-a", nil); statusCode(t, err) != http.StatusNotFound {
			t.Fatalf("deleting a missing namespace: %v, want 404", err)
		}
		// The default namespace stays.
		if _, err := nc.Namespaces().Delete("default", nil); err == nil {
			t.Fatal("deleting the default namespace succeeded")
		} else if code := statusCode(t, err); code >= 500 {
			t.Fatalf("deleting the default namespace: status %d, want a 4xx", code)
		}
		if _, _, err := nc.Namespaces().Info("default", nil); err != nil {
			t.Fatalf("default namespace gone: %v", err)
		}
	})

	t.Run("MetaHeaders", func(t *testing.T) {
		for _, path := range []string{
			"/v1/status/leader", "/v1/status/peers", "/v1/agent/self", "/v1/agent/members",
			"/v1/agent/health", "/v1/operator/raft/configuration", "/v1/jobs", "/v1/namespaces",
			"/v1/namespace/default",
		} {
			code, h, body := rawDo(t, "GET", addr+path, nil)
			if code != 200 {
				t.Errorf("GET %s = %d %s", path, code, body)
				continue
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("GET %s: Content-Type %q", path, ct)
			}
			checkMetaHeaders(t, path, h)
		}
	})
}

// TestNomadCompatCluster covers what needs three servers: the Raft
// configuration, forwarding to the leader and stale reads.
func TestNomadCompatCluster(t *testing.T) {
	c := servertest.NewCluster(t, 3, servertest.WithoutSchedulers(), servertest.WithConfig(func(i int, cfg *server.Config) {
		cfg.MaxRequestBody = 32 << 10
	}))
	li, leader := c.WaitForLeader(15 * time.Second)
	addrs := c.HTTPAddrs()
	lc := nomadClient(t, addrs[li])
	fi := (li + 1) % 3
	follower := c.Server(fi)
	fc := nomadClient(t, addrs[fi])

	t.Run("RaftConfiguration", func(t *testing.T) {
		// Ask every server, followers included (the read is forwarded).
		for i, a := range addrs {
			cfg, err := nomadClient(t, a).Operator().RaftGetConfiguration(nil)
			if err != nil {
				t.Fatalf("server %d: %v", i, err)
			}
			if len(cfg.Servers) != 3 {
				t.Fatalf("server %d: %d servers, want 3: %+v", i, len(cfg.Servers), cfg.Servers)
			}
			leaders, ids := 0, map[string]bool{}
			for _, s := range cfg.Servers {
				if !s.Voter {
					t.Errorf("server %d: %s is not a voter", i, s.Node)
				}
				if s.Leader {
					leaders++
					if s.Address != leader.RaftAddr() || s.ID != leader.NodeID() {
						t.Errorf("server %d: leader entry %+v, want %s", i, s, leader.RaftAddr())
					}
				}
				if s.Node == "" || s.Node == "(unknown)" {
					t.Errorf("server %d: entry without node name: %+v", i, s)
				}
				ids[s.ID] = true
			}
			if leaders != 1 {
				t.Errorf("server %d: %d leaders, want 1", i, leaders)
			}
			for _, s := range c.Servers() {
				if !ids[s.NodeID()] {
					t.Errorf("server %d: %s missing from the configuration", i, s.NodeID())
				}
			}
		}
	})

	t.Run("StatusEverywhere", func(t *testing.T) {
		for i, a := range addrs {
			nc := nomadClient(t, a)
			l, err := nc.Status().Leader()
			if err != nil || l != leader.RaftAddr() {
				t.Errorf("server %d: leader = %q, %v; want %q", i, l, err, leader.RaftAddr())
			}
			peers, err := nc.Status().Peers()
			if err != nil || len(peers) != 3 {
				t.Errorf("server %d: peers = %v, %v", i, peers, err)
			}
			m, err := nc.Agent().Members()
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Members) != 3 {
				t.Errorf("server %d: %d members", i, len(m.Members))
			}
			for _, mem := range m.Members {
				if mem.Status != "alive" {
					t.Errorf("server %d: member %s is %s", i, mem.Name, mem.Status)
				}
			}
			self, err := nc.Agent().Self()
			if err != nil {
				t.Fatal(err)
			}
			wantLeader := strconv.FormatBool(i == li)
			if self.Stats["nomad"]["leader"] != wantLeader {
				t.Errorf("server %d: stats leader = %q, want %s", i, self.Stats["nomad"]["leader"], wantLeader)
			}
		}
	})

	t.Run("WriteToFollowerIsForwarded", func(t *testing.T) {
		resp, wm, err := fc.Jobs().Register(nomadServiceJob("via-follower"), nil)
		if err != nil {
			t.Fatalf("register through follower: %v", err)
		}
		if resp.EvalID == "" || resp.JobModifyIndex == 0 || wm.LastIndex != resp.JobModifyIndex {
			t.Fatalf("register response = %+v, meta %+v", resp, wm)
		}
		// The leader has it at once: it applied the write.
		job, _, err := lc.Jobs().Info("via-follower", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *job.JobModifyIndex != resp.JobModifyIndex {
			t.Fatalf("leader has JobModifyIndex %d, want %d", *job.JobModifyIndex, resp.JobModifyIndex)
		}
		// A default (consistent) read on the follower goes to the leader,
		// so it sees the write without waiting for replication.
		job, qm, err := fc.Jobs().Info("via-follower", nil)
		if err != nil {
			t.Fatalf("consistent read through follower: %v", err)
		}
		if *job.ID != "via-follower" || !qm.KnownLeader || qm.LastIndex < resp.JobModifyIndex {
			t.Fatalf("follower read = %s, meta %+v", *job.ID, qm)
		}
		// Deregister through the follower too.
		if _, _, err := fc.Jobs().Deregister("via-follower", true, nil); err != nil {
			t.Fatalf("deregister through follower: %v", err)
		}
		if _, _, err := lc.Jobs().Info("via-follower", nil); statusCode(t, err) != http.StatusNotFound {
			t.Fatalf("purged job still on the leader: %v", err)
		}
	})

	t.Run("StaleReadOnFollower", func(t *testing.T) {
		resp, _, err := lc.Jobs().Register(nomadServiceJob("stale-read"), nil)
		if err != nil {
			t.Fatal(err)
		}
		var qm *nomad.QueryMeta
		servertest.WaitFor(t, 5*time.Second, "follower to replicate the job", func() bool {
			var job *nomad.Job
			job, qm, err = fc.Jobs().Info("stale-read", &nomad.QueryOptions{AllowStale: true})
			return err == nil && *job.ID == "stale-read"
		})
		if !qm.KnownLeader {
			t.Error("stale read: KnownLeader false")
		}
		if qm.LastIndex < resp.JobModifyIndex {
			t.Errorf("stale read: LastIndex %d < %d", qm.LastIndex, resp.JobModifyIndex)
		}
		// Stale reads are answered from the follower's own state.
		if got, _ := follower.State().JobByID(nil, "default", "stale-read"); got == nil {
			t.Error("follower state lacks the job it served")
		}
		jobs, _, err := fc.Jobs().List(&nomad.QueryOptions{AllowStale: true})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, j := range jobs {
			found = found || j.ID == "stale-read"
		}
		if !found {
			t.Errorf("stale list on follower lacks the job: %+v", jobs)
		}
		// A stale blocking query on the follower wakes on replication.
		idx := qm.LastIndex
		done := make(chan error, 1)
		go func() {
			_, m, err := fc.Jobs().List(&nomad.QueryOptions{AllowStale: true, WaitIndex: idx, WaitTime: 5 * time.Second})
			if err == nil && m.LastIndex <= idx {
				err = errors.New("LastIndex did not advance: " + strconv.FormatUint(m.LastIndex, 10))
			}
			done <- err
		}()
		if _, _, err := lc.Jobs().Register(nomadBatchJob("stale-wake"), nil); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(4 * time.Second):
			t.Fatal("stale blocking query on the follower did not wake")
		}
	})

	t.Run("RefusalsThroughFollower", func(t *testing.T) {
		// A write refused by the leader keeps its code and message on the
		// way back through the follower.
		bad := `{"Job":{"ID":"fwd-bad","Name":"fwd-bad","Type":"daemon","Datacenters":["dc1"],` +
			`"TaskGroups":[{"Name":"g","Tasks":[{"Name":"t","Driver":"docker"}]}]}}`
		code, _, msg := rawDo(t, "PUT", addrs[fi]+"/v1/jobs", strings.NewReader(bad))
		if code != http.StatusBadRequest || !strings.Contains(msg, "invalid job type") {
			t.Errorf("invalid job through follower = %d %q, want 400 naming the type", code, msg)
		}
		code, _, msg = rawDo(t, "PUT", addrs[fi]+"/v1/jobs", strings.NewReader(`{"Job":`))
		if code != http.StatusBadRequest {
			t.Errorf("malformed JSON through follower = %d %q, want 400", code, msg)
		}
		code, _, _ = rawDo(t, "GET", addrs[fi]+"/v1/job/nobody", nil)
		if code != http.StatusNotFound {
			t.Errorf("unknown job through follower = %d, want 404", code)
		}
		if j, _ := leader.State().JobByID(nil, "default", "fwd-bad"); j != nil {
			t.Error("refused job is in the state")
		}
		// Headers of forwarded and of stale local answers.
		for _, path := range []string{"/v1/jobs", "/v1/jobs?stale", "/v1/operator/raft/configuration", "/v1/status/leader"} {
			code, h, body := rawDo(t, "GET", addrs[fi]+path, nil)
			if code != 200 {
				t.Errorf("GET %s on follower = %d %s", path, code, body)
				continue
			}
			checkMetaHeaders(t, "follower "+path, h)
		}
	})

	t.Run("OversizedBodyToFollower", func(t *testing.T) {
		body := bigJobBody("too-big-follower", 64<<10)
		code, _, msg := rawDo(t, "PUT", addrs[fi]+"/v1/jobs", bytes.NewReader(body))
		if code != http.StatusRequestEntityTooLarge {
			t.Errorf("an oversized body sent to a follower gets %d (%s), want 413 as on the leader", code, strings.TrimSpace(msg))
		}
		if j, _ := leader.State().JobByID(nil, "default", "too-big-follower"); j != nil {
			t.Fatal("rejected job is in the state")
		}
	})
}

// bigJobBody is a valid job registration padded past size bytes.
func bigJobBody(id string, size int) []byte {
	pad := strings.Repeat("x", size)
	return []byte(`{"Job":{"ID":"` + id + `","Name":"` + id + `","Type":"service","Datacenters":["dc1"],` +
		`"Meta":{"pad":"` + pad + `"},"TaskGroups":[{"Name":"g","Count":1,"Tasks":[{"Name":"t","Driver":"docker","Config":{"image":"redis"}}]}]}}`)
}

// TestNomadBadInput sends requests a careless client might send and checks
// that each is refused with Nomad's status code and leaves nothing behind.
func TestNomadBadInput(t *testing.T) {
	const limit = 16 << 10
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers(), servertest.WithConfig(func(i int, cfg *server.Config) {
		cfg.MaxRequestBody = limit
	}))
	_, s := c.Leader()
	addr := c.HTTPAddrs()[0]
	nc := nomadClient(t, addr)
	if _, err := nc.Namespaces().Register(&nomad.Namespace{Name: "prod"}, nil); err != nil {
		t.Fatal(err)
	}
	startIndex := s.State().LatestIndex()

	validJob := func(id string) string {
		return `{"Job":{"ID":"` + id + `","Name":"` + id + `","Type":"service","Datacenters":["dc1"],` +
			`"TaskGroups":[{"Name":"g","Count":1,"Tasks":[{"Name":"t","Driver":"docker","Config":{"image":"redis"}}]}]}}`
	}
	// A valid job is accepted by the same raw path, so the refusals below
	// are about the input, not the encoding.
	t.Run("ValidBaseline", func(t *testing.T) {
		code, h, body := rawDo(t, "PUT", addr+"/v1/jobs", strings.NewReader(validJob("baseline")))
		if code != 200 {
			t.Fatalf("valid job: %d %s", code, body)
		}
		checkMetaHeaders(t, "register", h)
		if _, _, err := nc.Jobs().Deregister("baseline", true, nil); err != nil {
			t.Fatal(err)
		}
		startIndex = s.State().LatestIndex()
	})

	cases := []struct {
		name, method, path, body string
		want                     int
		msg                      string // substring the error message must hold
	}{
		{"MalformedJSON", "PUT", "/v1/jobs", `{"Job": {"ID": "bad"`, 400, "JSON"},
		{"NotJSON", "POST", "/v1/jobs", `hello`, 400, "JSON"},
		{"TrailingGarbage", "PUT", "/v1/jobs", validJob("trailing") + `{}`, 400, "JSON"},
		{"WrongFieldType", "PUT", "/v1/jobs", `{"Job":{"ID":"wft","Priority":"high"}}`, 400, "JSON"},
		{"EmptyBody", "PUT", "/v1/jobs", ``, 400, ""},
		{"NullJob", "PUT", "/v1/jobs", `{"Job":null}`, 400, "missing"},
		{"InvalidType", "PUT", "/v1/jobs", strings.Replace(validJob("badtype"), `"service"`, `"daemon"`, 1), 400, `invalid job type "daemon"`},
		{"InvalidPriority", "PUT", "/v1/jobs", strings.Replace(validJob("badprio"), `"Type"`, `"Priority":500,"Type"`, 1), 400, "priority"},
		{"NoTaskGroups", "PUT", "/v1/jobs", `{"Job":{"ID":"notg","Name":"notg","Type":"service","Datacenters":["dc1"]}}`, 400, "task group"},
		{"PathIDMismatch", "PUT", "/v1/job/other", validJob("mismatch"), 400, "does not match"},
		{"UnknownNamespace", "PUT", "/v1/jobs?namespace=nope", validJob("nsless"), 400, `"nope"`},
		{"WrongRegion", "PUT", "/v1/jobs", strings.Replace(validJob("region"), `"Type"`, `"Region":"mars","Type"`, 1), 400, "region"},
		{"UnknownJob", "GET", "/v1/job/does-not-exist", "", 404, "not found"},
		{"UnknownJobSummary", "GET", "/v1/job/does-not-exist/summary", "", 404, "not found"},
		{"DeregisterUnknownJob", "DELETE", "/v1/job/does-not-exist", "", 404, "not found"},
		{"UnknownEval", "GET", "/v1/evaluation/3a1c2b9e-0000-0000-0000-000000000000", "", 404, "not found"},
		{"UnknownAlloc", "GET", "/v1/allocation/3a1c2b9e-0000-0000-0000-000000000000", "", 404, "not found"},
		{"UnknownNode", "GET", "/v1/node/3a1c2b9e-0000-0000-0000-000000000000", "", 404, "not found"},
		{"UnknownNamespace404", "GET", "/v1/namespace/nope", "", 404, "not found"},
		{"UnknownEndpoint", "GET", "/v1/no-such-thing", "", 404, ""},
		{"BadIndex", "GET", "/v1/jobs?index=abc", "", 400, "index"},
		{"NegativeIndex", "GET", "/v1/jobs?index=-1", "", 400, "index"},
		{"BadWait", "GET", "/v1/jobs?index=1&wait=soon", "", 400, "wait"},
		{"UnknownRegion", "GET", "/v1/jobs?region=mars", "", 400, "region"},
		{"InvalidNamespaceName", "PUT", "/v1/namespace", `{"Name":"no spaces allowed"}`, 400, "namespace"},
		{"MalformedNamespace", "PUT", "/v1/namespace", `{"Name":`, 400, "JSON"},
		{"NamespacePathMismatch", "PUT", "/v1/namespace/a", `{"Name":"b"}`, 400, "does not match"},
		{"DeleteDefaultNamespace", "DELETE", "/v1/namespace/default", "", 400, "default"},
		{"DeleteJobSubresource", "DELETE", "/v1/job/x/summary", "", 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" || tc.method == "PUT" || tc.method == "POST" {
				body = strings.NewReader(tc.body)
			}
			code, _, msg := rawDo(t, tc.method, addr+tc.path, body)
			if code != tc.want {
				t.Fatalf("%s %s = %d (%s), want %d", tc.method, tc.path, code, strings.TrimSpace(msg), tc.want)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("%s %s: message %q does not mention %q", tc.method, tc.path, msg, tc.msg)
			}
		})
	}

	t.Run("InvalidJobNamesEveryProblem", func(t *testing.T) {
		body := `{"Job":{"ID":"multi","Name":"multi","Type":"daemon","Priority":500,"Datacenters":["dc1"]}}`
		code, _, msg := rawDo(t, "PUT", addr+"/v1/jobs", strings.NewReader(body))
		if code != 400 {
			t.Fatalf("status %d (%s), want 400", code, msg)
		}
		for _, want := range []string{"job type", "priority", "task group"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not mention %q", msg, want)
			}
		}
		// The Nomad client surfaces the same code and message.
		job := nomadServiceJob("client-badtype")
		job.Type = new("daemon")
		_, _, err := nc.Jobs().Register(job, nil)
		if code := statusCode(t, err); code != 400 {
			t.Fatalf("client register: status %d, want 400", code)
		}
		if !strings.Contains(err.Error(), "invalid job type") {
			t.Errorf("client error %q does not name the problem", err)
		}
	})

	t.Run("WrongMethod", func(t *testing.T) {
		// A method the route does not take is 405 (Nomad's handlers answer
		// ErrInvalidMethod with 405), with an Allow header from the mux.
		var wrong []string
		for _, tc := range []struct{ method, path string }{
			{"PATCH", "/v1/jobs"},
			{"DELETE", "/v1/jobs"},
			{"PATCH", "/v1/job/x"},
			{"POST", "/v1/status/leader"},
			{"PUT", "/v1/nodes"},
			{"DELETE", "/v1/evaluation/x"},
		} {
			code, _, msg := rawDo(t, tc.method, addr+tc.path, strings.NewReader("{}"))
			if code != http.StatusMethodNotAllowed {
				wrong = append(wrong, tc.method+" "+tc.path+" = "+strconv.Itoa(code)+" ("+strings.TrimSpace(msg)+")")
			}
		}
		if len(wrong) > 0 {
			t.Errorf("want 405, got:\n%s\n(the \"/v1/\" catch-all in server/routes.go matches every method, so the mux never answers 405)",
				strings.Join(wrong, "\n"))
		}
	})

	t.Run("BodyTooLarge", func(t *testing.T) {
		code, _, msg := rawDo(t, "PUT", addr+"/v1/jobs", bytes.NewReader(bigJobBody("too-big", 2*limit)))
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d (%s), want 413", code, msg)
		}
		if !strings.Contains(msg, strconv.Itoa(limit)) {
			t.Errorf("message %q does not give the limit", msg)
		}
		// Just under the limit is fine.
		small := bigJobBody("almost-too-big", limit-1024)
		if code, _, msg := rawDo(t, "PUT", addr+"/v1/jobs", bytes.NewReader(small)); code != 200 {
			t.Fatalf("body under the limit: %d %s", code, msg)
		}
		if _, _, err := nc.Jobs().Deregister("almost-too-big", true, nil); err != nil {
			t.Fatal(err)
		}
		startIndex = s.State().LatestIndex()
		// The same through the Nomad client.
		job := nomadServiceJob("client-too-big")
		job.SetMeta("pad", strings.Repeat("y", 2*limit))
		_, _, err := nc.Jobs().Register(job, nil)
		if code := statusCode(t, err); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("client register: status %d, want 413", code)
		}
	})

	t.Run("NotFoundCarriesMeta", func(t *testing.T) {
		// Nomad's read handlers call setMeta before answering 404 for a
		// missing object, so clients see the index to block on.
		var missing []string
		for _, path := range []string{
			"/v1/job/does-not-exist",
			"/v1/job/does-not-exist/summary",
			"/v1/evaluation/3a1c2b9e-0000-0000-0000-000000000000",
			"/v1/allocation/3a1c2b9e-0000-0000-0000-000000000000",
			"/v1/node/3a1c2b9e-0000-0000-0000-000000000000",
			"/v1/namespace/nope",
		} {
			code, h, _ := rawDo(t, "GET", addr+path, nil)
			if code != http.StatusNotFound {
				t.Fatalf("GET %s = %d, want 404", path, code)
			}
			if h.Get("X-Nomad-Index") == "" || h.Get("X-Nomad-KnownLeader") == "" || h.Get("X-Nomad-LastContact") == "" {
				missing = append(missing, path)
			}
		}
		if len(missing) > 0 {
			t.Errorf("404 answers lack X-Nomad-Index/KnownLeader/LastContact: %v "+
				"(server/http.go serve() calls setMeta only on success; Nomad sets the meta before its 404)", missing)
		}
	})

	t.Run("NothingLeftBehind", func(t *testing.T) {
		st := s.State()
		jobs, err := st.Jobs(nil, structs.AllNamespacesSentinel, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 0 {
			var ids []string
			for _, j := range jobs {
				ids = append(ids, j.Namespace+"/"+j.ID)
			}
			t.Fatalf("rejected requests left jobs behind: %v", ids)
		}
		if got := st.LatestIndex(); got != startIndex {
			t.Errorf("state index moved from %d to %d on rejected requests", startIndex, got)
		}
		for _, ns := range []string{"a", "b", "no spaces allowed"} {
			if n, _ := st.NamespaceByName(nil, ns); n != nil {
				t.Errorf("rejected namespace %q exists", ns)
			}
		}
		if n, _ := st.NamespaceByName(nil, "default"); n == nil {
			t.Error("default namespace gone")
		}
		list, _, err := nc.Jobs().List(&nomad.QueryOptions{Namespace: "*"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 0 {
			t.Fatalf("jobs listed after rejected requests: %+v", list)
		}
		// The server still works.
		if _, _, err := nc.Jobs().Register(nomadServiceJob("after-bad-input"), nil); err != nil {
			t.Fatalf("register after bad input: %v", err)
		}
	})
}
