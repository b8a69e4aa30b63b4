package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// clientCall sends a request of the agents' API and decodes a 200 answer
// into out. It returns the status code and the body of other answers.
func clientCall(t testing.TB, method, url, secret string, body, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("X-Berth-Node-Secret", secret)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, data, err)
		}
	}
	return resp.StatusCode, string(data)
}

var nodeSeq atomic.Int64

func simNode(status string) *structs.Node {
	seq := nodeSeq.Add(1)
	return &structs.Node{
		ID:         fmt.Sprintf("7e57a0de-0000-4000-8000-%012d", seq),
		SecretID:   fmt.Sprintf("5ec2e700-0000-4000-8000-%012d", seq),
		Name:       fmt.Sprintf("sim-%d", seq),
		Datacenter: "dc1",
		Status:     status,
		Attributes: map[string]string{"kernel.name": "linux"},
		NodeResources: &structs.NodeResources{
			Cpu:    structs.NodeCpuResources{CpuShares: 4000, TotalCpuCores: 4},
			Memory: structs.NodeMemoryResources{MemoryMB: 8192},
			Disk:   structs.NodeDiskResources{DiskMB: 100000},
			// no dynamic range: 0-0 is allowed
		},
		Drivers: map[string]*structs.DriverInfo{"docker": {Detected: true, Healthy: true}},
	}
}

func register(t testing.TB, base string, n *structs.Node) *structs.NodeHeartbeatResponse {
	t.Helper()
	var resp structs.NodeHeartbeatResponse
	if code, body := clientCall(t, "PUT", base+"/v1/client/node/register", n.SecretID, &structs.NodeRegisterRequest{Node: n}, &resp); code != http.StatusOK {
		t.Fatalf("register %s: %d %s", n.ID, code, body)
	}
	return &resp
}

func nodeStatus(t testing.TB, s *server.Server, id string) string {
	t.Helper()
	n, err := s.State().NodeByID(nil, id)
	if err != nil || n == nil {
		t.Fatalf("node %s: %v, %v", id, n, err)
	}
	return n.Status
}

func heartbeatCluster(t *testing.T, ttl time.Duration) (*servertest.Cluster, *server.Server, string) {
	t.Helper()
	c := servertest.NewCluster(t, 1, servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.MinHeartbeatTTL = ttl
		cfg.HeartbeatGrace = ttl / 2
		cfg.FailoverHeartbeatTTL = ttl
	}))
	_, s := c.WaitForLeader(15 * time.Second)
	return c, s, "http://" + s.HTTPAddr()
}

func TestClientNodeRegisterValidatesAndAuthenticates(t *testing.T) {
	t.Parallel()
	_, s, base := heartbeatCluster(t, time.Minute)
	url := base + "/v1/client/node/register"

	bad := simNode(structs.NodeStatusReady)
	bad.ID, bad.Name, bad.Datacenter, bad.NodeResources = "not-a-uuid", "", " ", nil
	code, body := clientCall(t, "PUT", url, bad.SecretID, &structs.NodeRegisterRequest{Node: bad}, nil)
	if code != http.StatusBadRequest {
		t.Fatalf("invalid node: %d %s", code, body)
	}
	for _, want := range []string{"not a UUID", "name is missing", "datacenter is missing", "resources are missing"} {
		if !strings.Contains(body, want) {
			t.Errorf("invalid node: message %q does not say %q", body, want)
		}
	}
	if code, body := clientCall(t, "PUT", url, "", &structs.NodeRegisterRequest{}, nil); code != http.StatusBadRequest {
		t.Errorf("no node: %d %s", code, body)
	}
	down := simNode(structs.NodeStatusDown)
	if code, body := clientCall(t, "PUT", url, down.SecretID, &structs.NodeRegisterRequest{Node: down}, nil); code != http.StatusBadRequest {
		t.Errorf("registering a down node: %d %s", code, body)
	}
	noSecret := simNode(structs.NodeStatusReady)
	noSecret.SecretID = ""
	if code, body := clientCall(t, "PUT", url, "", &structs.NodeRegisterRequest{Node: noSecret}, nil); code != http.StatusBadRequest || !strings.Contains(body, "secret") {
		t.Errorf("node without secret: %d %s", code, body)
	}

	// the header alone sets the secret of a new node
	n := simNode("")
	secret := n.SecretID
	n.SecretID = ""
	var resp structs.NodeHeartbeatResponse
	if code, body := clientCall(t, "PUT", url, secret, &structs.NodeRegisterRequest{Node: n}, &resp); code != http.StatusOK {
		t.Fatalf("register: %d %s", code, body)
	}
	if resp.HeartbeatTTL < time.Minute || resp.HeartbeatTTL >= 2*time.Minute || resp.Index == 0 ||
		len(resp.Servers) != 1 || resp.Servers[0] != s.HTTPAddr() {
		t.Fatalf("register response = %+v", resp)
	}
	stored, _ := s.State().NodeByID(nil, n.ID)
	if stored.SecretID != secret || stored.Status != structs.NodeStatusInit || stored.NodePool != structs.DefaultNodePool ||
		stored.SchedulingEligibility != structs.NodeSchedulingEligible || stored.StatusUpdatedAt == 0 {
		t.Fatalf("stored node = %+v", stored)
	}
	// the public API never shows the secret
	var pub structs.Node
	if code, _ := clientCall(t, "GET", base+"/v1/node/"+n.ID, "", nil, &pub); code != http.StatusOK || pub.SecretID != "" {
		t.Fatalf("GET node: %d, secret %q", code, pub.SecretID)
	}

	// a re-registration must carry the same secret
	n.SecretID = "5ec2e700-0000-4000-8000-ffffffffffff"
	if code, body := clientCall(t, "PUT", url, n.SecretID, &structs.NodeRegisterRequest{Node: n}, nil); code != http.StatusForbidden {
		t.Errorf("re-register with another secret: %d %s", code, body)
	}
	n.SecretID = secret
	n.Status = structs.NodeStatusReady
	register(t, base, n)
	if got := nodeStatus(t, s, n.ID); got != structs.NodeStatusReady {
		t.Errorf("re-registered node status = %s", got)
	}

	// the other endpoints want the secret too
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/v1/client/node/" + n.ID + "/heartbeat"},
		{"GET", "/v1/client/node/" + n.ID + "/allocations"},
	} {
		for _, sec := range []string{"", "wrong"} {
			if code, body := clientCall(t, tc.method, base+tc.path, sec, nil, nil); code != http.StatusForbidden {
				t.Errorf("%s %s with secret %q: %d %s", tc.method, tc.path, sec, code, body)
			}
		}
	}
	if code, _ := clientCall(t, "PUT", base+"/v1/client/node/7e57a0de-0000-4000-8000-999999999999/heartbeat", secret, nil, nil); code != http.StatusNotFound {
		t.Errorf("heartbeat of an unknown node: %d", code)
	}
	if code, body := clientCall(t, "PUT", base+"/v1/client/allocations/update", "", &structs.AllocClientUpdateRequest{
		Allocs: []*structs.Allocation{{ID: "x"}}}, nil); code != http.StatusForbidden {
		t.Errorf("alloc update without secret: %d %s", code, body)
	}
	// an agent may report allocations that were garbage collected
	var upd struct{ Index uint64 }
	if code, body := clientCall(t, "PUT", base+"/v1/client/allocations/update", secret, &structs.AllocClientUpdateRequest{
		Allocs: []*structs.Allocation{{ID: "a1b2c3d4-0000-4000-8000-000000000000", ClientStatus: structs.AllocClientStatusRunning}}}, &upd); code != http.StatusOK {
		t.Errorf("update of an unknown alloc: %d %s", code, body)
	}
	var allocs []*structs.Allocation
	if code, body := clientCall(t, "GET", base+"/v1/client/node/"+n.ID+"/allocations", secret, nil, &allocs); code != http.StatusOK || allocs == nil || len(allocs) != 0 {
		t.Errorf("allocations of an empty node: %d %s", code, body)
	}
}

// TestHeartbeatLifecycle: a node that heartbeats stays ready; one that
// stops is marked down after its TTL; a heartbeat brings it back.
func TestHeartbeatLifecycle(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	_, s, base := heartbeatCluster(t, ttl)
	n := simNode(structs.NodeStatusInit)
	resp := register(t, base, n)
	if resp.HeartbeatTTL < ttl || resp.HeartbeatTTL >= 2*ttl {
		t.Fatalf("TTL = %s, want [%s, %s)", resp.HeartbeatTTL, ttl, 2*ttl)
	}
	hb := base + "/v1/client/node/" + n.ID + "/heartbeat"
	if code, body := clientCall(t, "PUT", hb, n.SecretID, nil, nil); code != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	if got := nodeStatus(t, s, n.ID); got != structs.NodeStatusReady {
		t.Fatalf("initializing node after its first heartbeat = %s, want ready", got)
	}

	// heartbeating for several TTLs keeps it ready
	until := time.Now().Add(5 * ttl)
	for time.Now().Before(until) {
		if code, body := clientCall(t, "PUT", hb, n.SecretID, nil, nil); code != http.StatusOK {
			t.Fatalf("heartbeat: %d %s", code, body)
		}
		if got := nodeStatus(t, s, n.ID); got != structs.NodeStatusReady {
			t.Fatalf("heartbeating node became %s", got)
		}
		time.Sleep(ttl / 5)
	}

	// silence: down within TTL (+ jitter) + grace
	servertest.WaitFor(t, 20*ttl, "node marked down", func() bool { return nodeStatus(t, s, n.ID) == structs.NodeStatusDown })

	var hbResp structs.NodeHeartbeatResponse
	if code, body := clientCall(t, "PUT", hb, n.SecretID, nil, &hbResp); code != http.StatusOK {
		t.Fatalf("heartbeat of a down node: %d %s", code, body)
	}
	if got := nodeStatus(t, s, n.ID); got != structs.NodeStatusReady || hbResp.Index == 0 {
		t.Fatalf("down node after a heartbeat = %s (index %d), want ready", got, hbResp.Index)
	}
}

// TestHeartbeatTimersAfterRestart: a new leader arms a timer (the
// failover TTL) for every node it finds, so a node registered before the
// restart that never checks in again is marked down.
func TestHeartbeatTimersAfterRestart(t *testing.T) {
	t.Parallel()
	var failover atomic.Int64
	failover.Store(int64(time.Hour))
	c := servertest.NewCluster(t, 1, servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.MinHeartbeatTTL = time.Hour
		cfg.FailoverHeartbeatTTL = time.Duration(failover.Load())
	}))
	_, s := c.WaitForLeader(15 * time.Second)
	n := simNode(structs.NodeStatusReady)
	register(t, "http://"+s.HTTPAddr(), n)

	failover.Store(int64(300 * time.Millisecond))
	c.Kill(0)
	s = c.Restart(0)
	c.WaitForLeader(15 * time.Second)
	servertest.WaitFor(t, 15*time.Second, "node marked down by the new leader", func() bool {
		return nodeStatus(t, s, n.ID) == structs.NodeStatusDown
	})
}

func systemJob(id string) *nomad.Job {
	job := nomad.NewSystemJob(id, id, "global", 70)
	job.AddDatacenter("dc1")
	job.AddTaskGroup(nomad.NewTaskGroup("sys", 1).AddTask(nomad.NewTask("agent", "docker").SetConfig("image", "redis:7")))
	return job
}

func nodeUpdateEvals(t testing.TB, nc *nomad.Client, jobID, nodeID string) []*nomad.Evaluation {
	t.Helper()
	evals, _, err := nc.Jobs().Evaluations(jobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*nomad.Evaluation
	for _, e := range evals {
		if e.TriggeredBy == structs.EvalTriggerNodeUpdate && e.NodeID == nodeID {
			out = append(out, e)
		}
	}
	return out
}

// TestNodeEventsCreateSystemJobEvals: a node that becomes ready, and one
// made eligible again, get node-update evals for system and sysbatch jobs.
func TestNodeEventsCreateSystemJobEvals(t *testing.T) {
	t.Parallel()
	_, _, base := heartbeatCluster(t, time.Minute)
	nc := nomadClient(t, base)
	if _, _, err := nc.Jobs().Register(systemJob("sys-dc1"), nil); err != nil {
		t.Fatal(err)
	}
	other := systemJob("sys-dc2")
	other.Datacenters = []string{"dc2"}
	if _, _, err := nc.Jobs().Register(other, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := nc.Jobs().Register(nomadServiceJob("svc"), nil); err != nil {
		t.Fatal(err)
	}

	n := simNode(structs.NodeStatusReady)
	register(t, base, n)
	evals := nodeUpdateEvals(t, nc, "sys-dc1", n.ID)
	if len(evals) != 1 || evals[0].Type != structs.JobTypeSystem || evals[0].Priority != 70 {
		t.Fatalf("node-update evals of the system job = %+v", evals)
	}
	if got := nodeUpdateEvals(t, nc, "sys-dc2", n.ID); len(got) != 0 {
		t.Errorf("system job of another datacenter got evals: %+v", got)
	}
	if got := nodeUpdateEvals(t, nc, "svc", n.ID); len(got) != 0 {
		t.Errorf("service job without allocs on the node got evals: %+v", got)
	}
	// a re-registration of a ready node changes nothing
	register(t, base, n)
	if got := nodeUpdateEvals(t, nc, "sys-dc1", n.ID); len(got) != 1 {
		t.Errorf("re-registration created evals: %d", len(got))
	}

	// eligibility through the official client
	resp, err := nc.Nodes().ToggleEligibility(n.ID, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.EvalIDs) != 0 || resp.NodeModifyIndex == 0 {
		t.Errorf("ineligible response = %+v", resp)
	}
	node, _, err := nc.Nodes().Info(n.ID, nil)
	if err != nil || node.SchedulingEligibility != structs.NodeSchedulingIneligible {
		t.Fatalf("node after ineligible = %v, %v", node, err)
	}
	resp, err = nc.Nodes().ToggleEligibility(n.ID, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.EvalIDs) != 1 || resp.EvalCreateIndex == 0 {
		t.Errorf("eligible response = %+v", resp)
	}
	if got := nodeUpdateEvals(t, nc, "sys-dc1", n.ID); len(got) != 2 {
		t.Errorf("node-update evals after eligible again = %d, want 2", len(got))
	}

	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/v1/node/" + n.ID + "/eligibility", `{"Eligibility":"maybe"}`, http.StatusBadRequest},
		{"/v1/node/" + n.ID + "/eligibility", `{"NodeID":"other","Eligibility":"eligible"}`, http.StatusBadRequest},
		{"/v1/node/7e57a0de-0000-4000-8000-999999999999/eligibility", `{"Eligibility":"eligible"}`, http.StatusNotFound},
	} {
		req, _ := http.NewRequest("PUT", base+tc.path, strings.NewReader(tc.body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("PUT %s %s: %d, want %d", tc.path, tc.body, res.StatusCode, tc.code)
		}
	}
}
