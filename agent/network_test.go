package agent_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent"
	"github.com/berth-dev/berth/agent/internal/hostproctest"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// recordingNetwork is an in-process network.Network that records calls
// and hands out addresses from the subnet it was configured with.
type recordingNetwork struct {
	mu      sync.Mutex
	calls   []string
	cfg     *network.Config
	keeps   [][]string
	peers   [][]network.Peer
	allocs  map[string]*network.AllocNetwork
	cleaned bool
}

func newRecordingNetwork() *recordingNetwork {
	return &recordingNetwork{allocs: map[string]*network.AllocNetwork{}}
}

func (r *recordingNetwork) add(c string) { r.calls = append(r.calls, c) }

func (r *recordingNetwork) SetConfig(_ context.Context, cfg *network.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("config")
	r.cfg = cfg
	return nil
}

func (r *recordingNetwork) CreateNetwork(_ context.Context, req *network.AllocNetworkRequest) (*network.AllocNetwork, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("create " + req.AllocID)
	if r.cfg == nil {
		return nil, network.ErrNotConfigured
	}
	// a namespace path that exists, so a restored network is reused
	n := &network.AllocNetwork{AllocID: req.AllocID, Mode: req.Mode, NamespacePath: "/proc/self/ns/net", IP: "10.99.0.2"}
	r.allocs[req.AllocID] = n
	return n, nil
}

func (r *recordingNetwork) DestroyNetwork(_ context.Context, allocID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("destroy " + allocID)
	delete(r.allocs, allocID)
	return nil
}

func (r *recordingNetwork) SetPeers(_ context.Context, peers []network.Peer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("peers")
	r.peers = append(r.peers, peers)
	return nil
}

func (r *recordingNetwork) Installed(context.Context) (*network.InstalledState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &network.InstalledState{}
	for _, n := range r.allocs {
		st.Allocations = append(st.Allocations, n)
	}
	return st, nil
}

func (r *recordingNetwork) Reconcile(_ context.Context, keep []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("reconcile")
	keep = slices.Clone(keep)
	slices.Sort(keep)
	r.keeps = append(r.keeps, keep)
	for id := range r.allocs {
		if !slices.Contains(keep, id) {
			delete(r.allocs, id)
		}
	}
	return nil
}

func (r *recordingNetwork) Cleanup(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("cleanup")
	r.cleaned = true
	r.allocs = map[string]*network.AllocNetwork{}
	return nil
}

func (r *recordingNetwork) snapshot() (calls []string, cfg *network.Config, keeps [][]string, peers [][]network.Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), r.cfg, slices.Clone(r.keeps), slices.Clone(r.peers)
}

func (r *recordingNetwork) count(prefix string) int {
	calls, _, _, _ := r.snapshot()
	n := 0
	for _, c := range calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

// netnsHostDriver is the host-process driver claiming it joins network
// namespaces: the agent tests only check what it is handed.
type netnsHostDriver struct{ *hostproctest.Driver }

func (netnsHostDriver) Capabilities(context.Context, string) (*driver.Capabilities, error) {
	return &driver.Capabilities{SendSignals: true, NetNamespace: true}, nil
}

func bridgeJob(id string, task *structs.Task) *structs.Job {
	job := testJob(id, structs.JobTypeService, 1, task)
	job.TaskGroups[0].Networks = []*structs.NetworkResource{{Mode: "bridge", DynamicPorts: []structs.Port{{Label: "http", To: 8080}}}}
	return job
}

func networkAgentConfig(t *testing.T, c *servertest.Cluster, name, dir string, d *hostproctest.Driver, n network.Network) agent.Config {
	cfg := agentConfig(t, c, name, dir, d)
	cfg.Drivers = map[string]driver.Driver{"raw_exec": netnsHostDriver{d}}
	cfg.Network = n
	return cfg
}

func TestAgentNetworkLifecycle(t *testing.T) {
	c := cluster(t, 1)
	cl := apiClient(t, c)
	d := hostproctest.New("raw_exec")
	net1 := newRecordingNetwork()
	dir := t.TempDir()
	cfg := networkAgentConfig(t, c, "net-1", dir, d, net1)
	a := startAgent(t, cfg)

	servertest.WaitFor(t, 10*time.Second, "network configured and reconciled", func() bool {
		return net1.count("reconcile") == 1
	})
	node, _, err := cl.Nodes().Info(a.NodeID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	calls, got, keeps, _ := net1.snapshot()
	want := &network.Config{
		StateDir: filepath.Join(dir, "network"), ClusterCIDR: "10.88.0.0/16", NodeSubnet: node.NetworkSubnet,
		NodeAddress: "127.0.0.1", HostAddresses: []string{"127.0.0.1"}, Routing: network.RoutingHostGW,
	}
	if node.NetworkSubnet == "" || !reflect.DeepEqual(got, want) {
		t.Fatalf("plugin config %+v, want %+v", got, want)
	}
	if calls[0] != "config" || calls[1] != "reconcile" || len(keeps[0]) != 0 {
		t.Fatalf("calls %v keeps %v: want config then reconcile of nothing", calls, keeps)
	}

	// a second node: the first routes to its subnet
	net2 := newRecordingNetwork()
	b := startAgent(t, networkAgentConfig(t, c, "net-2", t.TempDir(), hostproctest.New("raw_exec"), net2))
	node2, _, err := cl.Nodes().Info(b.NodeID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantPeer := []network.Peer{{NodeID: b.NodeID(), Address: "127.0.0.1", Subnet: node2.NetworkSubnet}}
	servertest.WaitFor(t, 15*time.Second, "agent 1 got agent 2 as a peer", func() bool {
		_, _, _, peers := net1.snapshot()
		return len(peers) > 0 && reflect.DeepEqual(peers[len(peers)-1], wantPeer)
	})
	b.Shutdown()

	// a bridge group: its network exists before the task and goes after
	job := bridgeJob("netweb", shTask("web", `echo "$NOMAD_ALLOC_IP_http" > "$NOMAD_ALLOC_DIR/ip"; exec sleep 60`))
	job.Constraints = []*structs.Constraint{{LTarget: "${node.unique.name}", RTarget: "net-1", Operand: "="}}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 20*time.Second, "bridge alloc running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 {
			allocID = al[0].ID
		}
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusRunning
	})
	if n := net1.count("create " + allocID); n != 1 {
		t.Fatalf("%d creates of %s", n, allocID)
	}

	// the agent restarts: the alloc is kept by the reconcile, and its
	// persisted network is used instead of a new CreateNetwork
	a.Shutdown()
	d.Forget()
	a = startAgent(t, cfg)
	servertest.WaitFor(t, 10*time.Second, "reconciled after restart", func() bool {
		return net1.count("reconcile") == 2
	})
	_, _, keeps, _ = net1.snapshot()
	if !reflect.DeepEqual(keeps[1], []string{allocID}) {
		t.Fatalf("second reconcile kept %v, want [%s]", keeps[1], allocID)
	}
	if n := net1.count("create " + allocID); n != 1 {
		t.Fatalf("%d creates of %s after restart, want still 1", n, allocID)
	}

	if _, _, err := cl.Jobs().Deregister(job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 20*time.Second, "network destroyed after the task stopped", func() bool {
		al := jobAllocs(t, cl, job.ID)
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusComplete && net1.count("destroy "+allocID) >= 1
	})
	if len(d.TaskIDs()) != 0 {
		t.Fatalf("tasks left: %v", d.TaskIDs())
	}
	_ = a
}

// Without a network plugin a bridge group fails with a clear reason.
func TestAgentNetworkDisabledFailsBridgeGroup(t *testing.T) {
	c := cluster(t, 1)
	cl := apiClient(t, c)
	d := hostproctest.New("raw_exec")
	cfg := agentConfig(t, c, "nonet", t.TempDir(), d)
	cfg.Drivers = map[string]driver.Driver{"raw_exec": netnsHostDriver{d}}
	startAgent(t, cfg)
	job := bridgeJob("nonet", shTask("web", `exec sleep 60`))
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("failed to set up the allocation network: %s", "allocation networking is not available on this node: no network plugin is configured on this agent (-network-plugin)")
	servertest.WaitFor(t, 20*time.Second, "alloc failed with the reason", func() bool {
		for _, al := range jobAllocs(t, cl, job.ID) {
			st := al.TaskStates["web"]
			if al.ClientStatus != structs.AllocClientStatusFailed || st == nil {
				continue
			}
			for _, ev := range st.Events {
				if ev.Type == "Setup Failure" && ev.DisplayMessage == want {
					return true
				}
			}
		}
		return false
	})
	if len(d.TaskIDs()) != 0 {
		t.Fatalf("a task started: %v", d.TaskIDs())
	}
}

// -cleanup-network configures the plugin with the recorded config and
// removes everything.
func TestCleanupNetworkUsesRecordedConfig(t *testing.T) {
	c := cluster(t, 1)
	d := hostproctest.New("raw_exec")
	n := newRecordingNetwork()
	dir := t.TempDir()
	cfg := networkAgentConfig(t, c, "clean", dir, d, n)
	a := startAgent(t, cfg)
	servertest.WaitFor(t, 10*time.Second, "network ready", func() bool { return n.count("reconcile") == 1 })
	_, applied, _, _ := n.snapshot()
	a.Shutdown()

	fresh := newRecordingNetwork()
	if err := agent.CleanupNetwork(context.Background(), agent.Config{DataDir: dir, Network: fresh}, nil); err != nil {
		t.Fatal(err)
	}
	calls, got, _, _ := fresh.snapshot()
	if !reflect.DeepEqual(calls, []string{"config", "cleanup"}) || !reflect.DeepEqual(got, applied) {
		t.Fatalf("calls %v config %+v, want config %+v then cleanup", calls, got, applied)
	}
}
