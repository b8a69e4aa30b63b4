package allocrunner

import (
	"context"

	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/internal/hostproctest"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// callLog records, in order, the network and driver calls of a test.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// fakeNetworks is an in-process Networks recording its calls.
type fakeNetworks struct {
	log *callLog
	// createErr fails CreateNetwork; block makes it wait for ctx.
	createErr error
	block     bool

	mu   sync.Mutex
	reqs []*network.AllocNetworkRequest
}

func (f *fakeNetworks) CreateNetwork(ctx context.Context, req *network.AllocNetworkRequest) (*network.AllocNetwork, error) {
	f.log.add("create " + req.AllocID)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.createErr != nil {
		return nil, f.createErr
	}
	return testNetwork(req.AllocID, req.Mode), nil
}

func (f *fakeNetworks) DestroyNetwork(_ context.Context, allocID string) error {
	f.log.add("destroy " + allocID)
	return nil
}

func testNetwork(allocID, mode string) *network.AllocNetwork {
	return &network.AllocNetwork{
		AllocID: allocID, Mode: mode, NamespacePath: "/run/test-netns/" + allocID,
		IP: "10.88.7.5", Gateway: "10.88.7.1",
		HostsPath: "/state/" + allocID + "/hosts", ResolvConfPath: "/state/" + allocID + "/resolv.conf",
	}
}

// netnsDriver is the host-process driver claiming it can join a netns
// (it does not: the tests only look at what it is given).
type netnsDriver struct {
	*hostproctest.Driver
	log *callLog

	mu      sync.Mutex
	configs map[string]*driver.TaskConfig
}

func newNetnsDriver(log *callLog) *netnsDriver {
	return &netnsDriver{Driver: hostproctest.New("raw_exec"), log: log, configs: map[string]*driver.TaskConfig{}}
}

func (d *netnsDriver) Capabilities(context.Context, string) (*driver.Capabilities, error) {
	return &driver.Capabilities{SendSignals: true, NetNamespace: true}, nil
}

func (d *netnsDriver) StartTask(ctx context.Context, cfg *driver.TaskConfig) (*driver.TaskHandle, error) {
	d.log.add("start " + cfg.TaskName)
	d.mu.Lock()
	d.configs[cfg.TaskName] = cfg
	d.mu.Unlock()
	return d.Driver.StartTask(ctx, cfg)
}

func (d *netnsDriver) config(task string) *driver.TaskConfig {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.configs[task]
}

// netStore is a memStore that also persists networks.
type netStore struct {
	memStore
	mu   sync.Mutex
	nets map[string]*network.AllocNetwork
}

func (s *netStore) PutNetwork(allocID string, n *network.AllocNetwork) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nets == nil {
		s.nets = map[string]*network.AllocNetwork{}
	}
	s.nets[allocID] = n
	return nil
}

func bridgeAlloc(mode string, tasks ...*structs.Task) *structs.Allocation {
	a := testAlloc(structs.JobTypeBatch, &structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Mode: "fail"}, tasks...)
	a.Job.TaskGroups[0].Networks = []*structs.NetworkResource{{
		Mode: mode, Hostname: "web-${NOMAD_ALLOC_INDEX}",
		DynamicPorts: []structs.Port{{Label: "http", To: 8080}},
	}}
	a.Name = "job.g[3]"
	a.AllocatedResources = &structs.AllocatedResources{Shared: structs.AllocatedSharedResources{
		Ports: []structs.AllocatedPortMapping{
			{Label: "http", Value: 23456, To: 8080, HostIP: "192.0.2.10"},
			{Label: "admin", Value: 23457, HostIP: "192.0.2.99"},
		},
	}}
	return a
}

func newNetRunner(t *testing.T, a *structs.Allocation, d driver.Driver, nets Networks, store StateStore) *AllocRunner {
	t.Helper()
	ar, err := New(Config{
		Alloc: a, Region: "global", AllocRoot: t.TempDir(),
		Node: &structs.Node{ID: "node-1", Attributes: map[string]string{structs.NodeAddressAttribute: "192.0.2.10"}},
		Drivers: func(name string) (driver.Driver, error) {
			if name == "raw_exec" {
				return d, nil
			}
			return nil, fmt.Errorf("no driver %q", name)
		},
		Networks: nets,
		State:    store,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ar.Destroy(10 * time.Second) })
	return ar
}

func TestNetworkBridgeCreatedBeforeTasksDestroyedAfter(t *testing.T) {
	log := &callLog{}
	nets := &fakeNetworks{log: log}
	d := newNetnsDriver(log)
	store := &netStore{}
	a := bridgeAlloc(network.ModeBridge,
		shTask("web", `echo "$NOMAD_ALLOC_IP_http $NOMAD_ALLOC_ADDR_http $NOMAD_HOST_PORT_http $NOMAD_PORT_http"`),
		shTask("side", `true`))
	ar := newNetRunner(t, a, d, nets, store)
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	if got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("client status %s (%s)", got.ClientStatus, got.ClientDescription)
	}
	calls := log.list()
	if len(calls) != 4 || calls[0] != "create "+a.ID || calls[3] != "destroy "+a.ID {
		t.Fatalf("calls %v: want create, both starts, then destroy", calls)
	}

	nets.mu.Lock()
	req := nets.reqs[0]
	nets.mu.Unlock()
	want := &network.AllocNetworkRequest{AllocID: a.ID, Mode: network.ModeBridge, Hostname: "web-3", Ports: []network.PortMapping{
		// the node's own address is not a restriction (localhost too)
		{Label: "http", HostPort: 23456, ContainerPort: 8080},
		{Label: "admin", HostPort: 23457, ContainerPort: 23457, HostIP: "192.0.2.99"},
	}}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("request %+v, want %+v", req, want)
	}

	cfg := d.config("web")
	n := testNetwork(a.ID, network.ModeBridge)
	if cfg.NetworkNamespace != n.NamespacePath || cfg.HostsPath != n.HostsPath || cfg.ResolvConfPath != n.ResolvConfPath || cfg.Hostname != "web-3" {
		t.Fatalf("task config netns %q hosts %q resolv %q hostname %q", cfg.NetworkNamespace, cfg.HostsPath, cfg.ResolvConfPath, cfg.Hostname)
	}
	for k, v := range map[string]string{
		"NOMAD_ALLOC_IP_http": "10.88.7.5", "NOMAD_ALLOC_ADDR_http": "10.88.7.5:8080",
		"NOMAD_HOST_PORT_http": "23456", "NOMAD_PORT_http": "8080", "NOMAD_IP_http": "192.0.2.10",
	} {
		if cfg.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg.Env[k], v)
		}
	}
	store.mu.Lock()
	persisted := store.nets[a.ID]
	store.mu.Unlock()
	if !reflect.DeepEqual(persisted, n) {
		t.Fatalf("persisted network %+v, want %+v", persisted, n)
	}
}

func TestNetworkCreateErrorFailsAlloc(t *testing.T) {
	log := &callLog{}
	pluginErr := fmt.Errorf("host port 23456/tcp is mapped to alloc x: %w", network.ErrPortConflict)
	nets := &fakeNetworks{log: log, createErr: pluginErr}
	d := newNetnsDriver(log)
	a := bridgeAlloc(network.ModeBridge, shTask("web", `true`))
	ar := newNetRunner(t, a, d, nets, &memStore{})
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	if got.ClientStatus != structs.AllocClientStatusFailed {
		t.Fatalf("client status %s, want failed", got.ClientStatus)
	}
	st := got.TaskStates["web"]
	last := st.Events[len(st.Events)-1]
	if !st.Failed || last.Type != EventSetupFailure || !last.FailsTask ||
		last.DisplayMessage != "failed to set up the allocation network: "+pluginErr.Error() {
		t.Fatalf("task state failed=%v, last event %+v", st.Failed, last)
	}
	if calls := log.list(); !reflect.DeepEqual(calls, []string{"create " + a.ID, "destroy " + a.ID}) {
		t.Fatalf("calls %v: no task may start", calls)
	}
}

func TestNetworkRawExecCannotJoinNamespace(t *testing.T) {
	log := &callLog{}
	nets := &fakeNetworks{log: log}
	// hostproctest claims no NetNamespace capability, as raw_exec
	a := bridgeAlloc(network.ModeBridge, shTask("web", `true`))
	ar := newNetRunner(t, a, hostproctest.New("raw_exec"), nets, &memStore{})
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	st := got.TaskStates["web"]
	if got.ClientStatus != structs.AllocClientStatusFailed || !st.Failed || !st.StartedAt.IsZero() {
		t.Fatalf("client status %s, task failed=%v started=%v", got.ClientStatus, st.Failed, st.StartedAt)
	}
	if typ := eventTypes(st); typ[len(typ)-2] != EventFailedValidation {
		t.Fatalf("events %v, want Failed Validation", typ)
	}
}

func TestNetworkHostModeAsksNothing(t *testing.T) {
	log := &callLog{}
	nets := &fakeNetworks{log: log}
	d := newNetnsDriver(log)
	for _, mode := range []string{"", network.ModeHost} {
		a := bridgeAlloc(mode, shTask("web", `true`))
		ar := newNetRunner(t, a, d, nets, &memStore{})
		ar.Run()
		if got := waitDone(t, ar, 20*time.Second); got.ClientStatus != structs.AllocClientStatusComplete {
			t.Fatalf("mode %q: client status %s", mode, got.ClientStatus)
		}
		if cfg := d.config("web"); cfg.NetworkNamespace != "" || cfg.HostsPath != "" || cfg.Env["NOMAD_ALLOC_IP_http"] != "" {
			t.Fatalf("mode %q: task got a network: %+v", mode, cfg)
		}
	}
	if calls := log.list(); !reflect.DeepEqual(calls, []string{"start web", "start web"}) {
		t.Fatalf("calls %v", calls)
	}
}

func TestNetworkNoneModeAndRestoredNetwork(t *testing.T) {
	log := &callLog{}
	nets := &fakeNetworks{log: log}
	d := newNetnsDriver(log)
	a := bridgeAlloc(network.ModeNone, shTask("web", `true`))
	ar := newNetRunner(t, a, d, nets, &memStore{})
	restored := testNetwork(a.ID, network.ModeNone)
	restored.IP = ""
	restored.NamespacePath = "/proc/self/ns/net" // a namespace that exists
	ar.RestoreNetwork(restored)
	ar.Run()
	if got := waitDone(t, ar, 20*time.Second); got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("client status %s", got.ClientStatus)
	}
	// restored: not created again, but removed once the tasks are done
	if calls := log.list(); !reflect.DeepEqual(calls, []string{"start web", "destroy " + a.ID}) {
		t.Fatalf("calls %v", calls)
	}
	if cfg := d.config("web"); cfg.NetworkNamespace != restored.NamespacePath {
		t.Fatalf("netns %q, want the restored one", cfg.NetworkNamespace)
	}
}

func TestNetworkUnavailableNodeFailsBridgeGroup(t *testing.T) {
	log := &callLog{}
	a := bridgeAlloc(network.ModeBridge, shTask("web", `true`))
	ar := newNetRunner(t, a, newNetnsDriver(log), nil, &memStore{})
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	st := got.TaskStates["web"]
	last := st.Events[len(st.Events)-1]
	want := fmt.Sprintf("failed to set up the allocation network: group network mode %q: %v", network.ModeBridge, ErrNoNetworking)
	if got.ClientStatus != structs.AllocClientStatusFailed || last.DisplayMessage != want {
		t.Fatalf("client status %s, last event %q, want %q", got.ClientStatus, last.DisplayMessage, want)
	}
	if calls := log.list(); len(calls) != 0 {
		t.Fatalf("calls %v", calls)
	}
}

func TestNetworkKillDuringSetup(t *testing.T) {
	log := &callLog{}
	nets := &fakeNetworks{log: log, block: true}
	a := bridgeAlloc(network.ModeBridge, shTask("web", `true`))
	ar := newNetRunner(t, a, newNetnsDriver(log), nets, &memStore{})
	ar.Run()
	deadline := time.Now().Add(5 * time.Second)
	for len(log.list()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("CreateNetwork not called")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ar.Kill()
	got := waitDone(t, ar, 10*time.Second)
	if st := got.TaskStates["web"]; st.State != TaskStateDead || st.Failed || !st.StartedAt.IsZero() {
		t.Fatalf("task %+v: want dead, not failed, never started", st)
	}
	if calls := log.list(); !reflect.DeepEqual(calls, []string{"create " + a.ID, "destroy " + a.ID}) {
		t.Fatalf("calls %v", calls)
	}
}

func TestNetworkPluginUnavailableIsRetried(t *testing.T) {
	log := &callLog{}
	nets := &flakyNetworks{fakeNetworks: fakeNetworks{log: log}, failures: 2}
	d := newNetnsDriver(log)
	a := bridgeAlloc(network.ModeBridge, shTask("web", `true`))
	ar := newNetRunner(t, a, d, nets, &memStore{})
	ar.Run()
	if got := waitDone(t, ar, 20*time.Second); got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("client status %s", got.ClientStatus)
	}
	want := []string{"create " + a.ID, "create " + a.ID, "create " + a.ID, "start web", "destroy " + a.ID}
	if calls := log.list(); !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

// flakyNetworks fails its first CreateNetwork calls as a plugin being
// relaunched does.
type flakyNetworks struct {
	fakeNetworks
	failures int
}

func (f *flakyNetworks) CreateNetwork(ctx context.Context, req *network.AllocNetworkRequest) (*network.AllocNetwork, error) {
	f.mu.Lock()
	fail := f.failures > 0
	f.failures--
	f.mu.Unlock()
	if fail {
		f.log.add("create " + req.AllocID)
		return nil, fmt.Errorf("create network: %w", network.ErrPluginUnavailable)
	}
	return f.fakeNetworks.CreateNetwork(ctx, req)
}

// A restored network whose namespace is gone (the node rebooted) is
// created again before the tasks start.
func TestNetworkRestoredButGoneIsRecreated(t *testing.T) {
	log := &callLog{}
	nets := &fakeNetworks{log: log}
	d := newNetnsDriver(log)
	a := bridgeAlloc(network.ModeBridge, shTask("web", `true`))
	ar := newNetRunner(t, a, d, nets, &memStore{})
	gone := testNetwork(a.ID, network.ModeBridge)
	gone.NamespacePath = filepath.Join(t.TempDir(), "netns-file") // not mounted
	ar.RestoreNetwork(gone)
	ar.Run()
	if got := waitDone(t, ar, 20*time.Second); got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("client status %s", got.ClientStatus)
	}
	want := []string{"create " + a.ID, "start web", "destroy " + a.ID}
	if calls := log.list(); !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if cfg := d.config("web"); cfg.NetworkNamespace != testNetwork(a.ID, network.ModeBridge).NamespacePath {
		t.Fatalf("netns %q, want the recreated one", cfg.NetworkNamespace)
	}
}
