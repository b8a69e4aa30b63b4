package network

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sentinels are the errors whose errors.Is must hold across the wire.
var sentinels = []error{ErrInvalidRequest, ErrPortConflict, ErrNotConfigured, ErrAddressesExhausted,
	ErrPluginUnavailable, context.Canceled, context.DeadlineExceeded}

// TestRoundTrip runs each method on a local memNetwork and on one behind
// the plugin transport, and wants the same answers: whatever the agent
// sends reaches the plugin (the memNetwork keeps and echoes it) and
// whatever the plugin returns, results and errors, reaches the agent.
func TestRoundTrip(t *testing.T) {
	remote := startSupervisor(t, nil).Network()
	local := newMemNetwork()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := local.SetConfig(ctx, testConfig()); err != nil {
		t.Fatal(err)
	}

	web := &AllocNetworkRequest{
		AllocID: "8ba1c3f0-web", Mode: ModeBridge, Hostname: "web-1",
		Ports: []PortMapping{
			{Label: "http", HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "192.168.50.3"},
			{Label: "dns", HostPort: 25001, ContainerPort: 25001},
		},
		DNS: &DNSConfig{Servers: []string{"10.0.0.53"}, Searches: []string{"svc"}, Options: []string{"ndots:2"}},
	}
	bridge := func(id string, ports ...int) *AllocNetworkRequest {
		r := &AllocNetworkRequest{AllocID: id, Mode: ModeBridge}
		for _, p := range ports {
			r.Ports = append(r.Ports, PortMapping{Label: "p" + strconv.Itoa(p), HostPort: p})
		}
		return r
	}
	peers := []Peer{
		{NodeID: "node-2", Address: "192.168.50.4", Subnet: "10.88.4.0/24", Subnet6: "fd00:b37:0:4::/64"},
		{NodeID: "node-3", Address: "192.168.50.5", Subnet: "10.88.5.0/24"},
	}
	create := func(r *AllocNetworkRequest) func(Network) (any, error) {
		return func(n Network) (any, error) { return n.CreateNetwork(ctx, r) }
	}
	installed := func(n Network) (any, error) { return n.Installed(ctx) }
	cases := []struct {
		name string
		call func(n Network) (any, error)
	}{
		{"CreateBridge", create(web)},
		{"CreateAgainIsIdempotent", create(web)},
		{"CreateHost", create(&AllocNetworkRequest{AllocID: "a-host", Mode: ModeHost, Ports: []PortMapping{{Label: "x", HostPort: 9000}}})},
		{"CreateNone", create(&AllocNetworkRequest{AllocID: "a-none", Mode: ModeNone})},
		{"CreateUnknownMode", create(&AllocNetworkRequest{AllocID: "a-bad", Mode: "macvlan"})},
		{"CreateNilRequest", create(nil)},
		{"CreatePortConflict", create(bridge("a-conflict", 8080))},
		{"CreateMore", create(bridge("a-2", 25002))},
		{"CreateMore2", create(bridge("a-3"))},
		{"CreateMore3", create(bridge("a-4"))},
		{"CreateMore4", create(bridge("a-5"))},
		{"CreateExhausted", create(bridge("a-6"))},
		{"SetPeers", func(n Network) (any, error) { return nil, n.SetPeers(ctx, peers) }},
		{"SetPeersInvalid", func(n Network) (any, error) {
			return nil, n.SetPeers(ctx, []Peer{{NodeID: "node-9", Subnet: "nope"}})
		}},
		{"InstalledWithPeers", installed},
		{"SetPeersEmpty", func(n Network) (any, error) { return nil, n.SetPeers(ctx, []Peer{}) }},
		{"InstalledNoPeers", installed},
		{"DestroyNetwork", func(n Network) (any, error) { return nil, n.DestroyNetwork(ctx, "a-2") }},
		{"DestroyUnknown", func(n Network) (any, error) { return nil, n.DestroyNetwork(ctx, "never-created") }},
		{"AddressReused", create(bridge("a-7", 25002))},
		{"Reconcile", func(n Network) (any, error) {
			return nil, n.Reconcile(ctx, []string{web.AllocID, "a-none", "gone-while-down"})
		}},
		{"InstalledAfterReconcile", installed},
		{"SetConfigInvalid", func(n Network) (any, error) {
			cfg := testConfig()
			cfg.NodeSubnet = "10.88.3.0/33"
			return nil, n.SetConfig(ctx, cfg)
		}},
		{"Cleanup", func(n Network) (any, error) { return nil, n.Cleanup(ctx) }},
		{"InstalledAfterCleanup", installed},
		{"SetConfigNil", func(n Network) (any, error) { return nil, n.SetConfig(ctx, nil) }},
		{"CreateUnconfigured", create(bridge("a-8"))},
	}
	for _, tc := range cases {
		// Not parallel subtests: later cases read what earlier ones did.
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := tc.call(local)
			got, gotErr := tc.call(remote)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("result differs across the wire (-local +remote):\n%s", diff)
			}
			if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
				t.Errorf("error differs across the wire: local %v, remote %v", wantErr, gotErr)
			}
			for _, s := range sentinels {
				if errors.Is(wantErr, s) != errors.Is(gotErr, s) {
					t.Errorf("errors.Is(%v) differs: local %v, remote %v", s, wantErr, gotErr)
				}
			}
		})
	}
}

// TestRoundTripCasesAreMeaningful guards TestRoundTrip against comparing
// nothing with nothing: the local answers it compares must include each
// kind of error and a full result.
func TestRoundTripCasesAreMeaningful(t *testing.T) {
	ctx := context.Background()
	m := newMemNetwork()
	if _, err := m.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: "a", Mode: ModeBridge}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("unconfigured: %v", err)
	}
	cfg := testConfig()
	cfg.NodeSubnet = "10.88.3.0/30" // one address after the gateway
	if err := m.SetConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := m.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: "a", Mode: ModeBridge, Ports: []PortMapping{{HostPort: 1}}})
	if err != nil || n.IP != "10.88.3.2" || n.Gateway != "10.88.3.1" {
		t.Fatalf("first alloc: %+v, %v", n, err)
	}
	if _, err := m.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: "b", Mode: ModeBridge, Ports: []PortMapping{{HostPort: 1}}}); !errors.Is(err, ErrPortConflict) {
		t.Fatalf("port conflict: %v", err)
	}
	if _, err := m.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: "b", Mode: ModeBridge}); !errors.Is(err, ErrAddressesExhausted) {
		t.Fatalf("exhausted: %v", err)
	}
}

// TestNilCrossesAsNil: a nil config and nil peers reach the plugin as
// nil, not as zero values.
func TestNilCrossesAsNil(t *testing.T) {
	s := startSupervisor(t, func(c *SupervisorConfig) { c.Config = nil })
	n := s.Network()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: "a", Mode: ModeBridge}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("with a nil config: got %v, want ErrNotConfigured", err)
	}
	if err := n.SetConfig(ctx, testConfig()); err != nil {
		t.Fatal(err)
	}
	if err := n.SetPeers(ctx, []Peer{{NodeID: "n2", Subnet: "10.88.4.0/24"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.SetPeers(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st, err := n.Installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Routes != nil {
		t.Fatalf("routes %v after SetPeers(nil), want nil", st.Routes)
	}
}

// TestContextReachesPlugin: the caller's cancel and deadline end the
// plugin's call, and come back as the context errors.
func TestContextReachesPlugin(t *testing.T) {
	n := startSupervisor(t, nil).Network()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	callCtx, callCancel := context.WithCancel(ctx)
	errCh := make(chan error, 1)
	go func() {
		_, err := n.CreateNetwork(callCtx, &AllocNetworkRequest{AllocID: blockAllocID})
		errCh <- err
	}()
	waitFor(t, 10*time.Second, "the call to block in the plugin", func() bool {
		v, err := probe(ctx, n)
		return err == nil && v.Get("blocking") == "1"
	})
	callCancel()
	select {
	case err := <-errCh:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not return within 5s of cancel")
	}
	waitFor(t, 5*time.Second, "the plugin to see the cancel", func() bool {
		v, err := probe(ctx, n)
		return err == nil && v.Get("blocking") == "0" && v.Get("ctx_err") == context.Canceled.Error()
	})

	deadlineCtx, deadlineCancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer deadlineCancel()
	if _, err := n.CreateNetwork(deadlineCtx, &AllocNetworkRequest{AllocID: blockAllocID}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

// TestConfigReachesPlugin: the supervisor's SetConfig carried the whole
// config, once.
func TestConfigReachesPlugin(t *testing.T) {
	n := startSupervisor(t, nil).Network()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := probe(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"set_config_calls": v.Get("set_config_calls"), "bridge": v.Get("bridge"), "extra": v.Get("extra"), "dns": v.Get("dns")}
	want := map[string]string{"set_config_calls": "1", "bridge": "berth0", "extra": `{"k":"v"}`, "dns": "[192.168.50.1 1.1.1.1]"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config as the plugin saw it (-want +got):\n%s", diff)
	}
}
