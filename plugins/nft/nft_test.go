package nft

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/netlab"
	"github.com/berth-dev/berth/plugins/network"
)

// twoNodes builds a lab with nodes A (10.88.1.0/24) and B (10.88.2.0/24),
// each running a plugin, peered with routing.
func twoNodes(t *testing.T, routing string) (lab *netlab.Lab, a, b *netlab.Node, pa, pb *Plugin) {
	lab = netlab.New(t, "nft")
	a, b = lab.AddNode("a"), lab.AddNode("b")
	pa, _ = startPlugin(t, a, "10.88.1.0/24", routing)
	pb, _ = startPlugin(t, b, "10.88.2.0/24", routing)
	ctx := context.Background()
	if err := pa.SetPeers(ctx, []network.Peer{{NodeID: "b", Address: b.Addr.String(), Subnet: "10.88.2.0/24"}}); err != nil {
		t.Fatalf("SetPeers a: %v", err)
	}
	if err := pb.SetPeers(ctx, []network.Peer{{NodeID: "a", Address: a.Addr.String(), Subnet: "10.88.1.0/24"}}); err != nil {
		t.Fatalf("SetPeers b: %v", err)
	}
	return lab, a, b, pa, pb
}

func TestCrossNodeAndPorts(t *testing.T) {
	for _, routing := range []string{network.RoutingHostGW, network.RoutingVXLAN} {
		t.Run(routing, func(t *testing.T) {
			lab, a, b, pa, pb := twoNodes(t, routing)
			outside := lab.AddOutside("internet")
			allocA := mustCreate(t, pa, &network.AllocNetworkRequest{AllocID: "alloc-a", Mode: network.ModeBridge, Hostname: "web",
				Ports: []network.PortMapping{
					{Label: "static", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
					{Label: "dynamic", HostPort: 23456, ContainerPort: 80},
				}})
			allocB := mustCreate(t, pb, &network.AllocNetworkRequest{AllocID: "alloc-b", Mode: network.ModeBridge})
			if allocA.IP != "10.88.1.2" || allocB.IP != "10.88.2.2" || allocA.Gateway != "10.88.1.1" {
				t.Fatalf("unexpected addresses: a=%s gw=%s b=%s", allocA.IP, allocA.Gateway, allocB.IP)
			}
			serveWhoAmI(t, allocA.NamespacePath, 80)
			serveWhoAmI(t, allocB.NamespacePath, 80)
			serveWhoAmI(t, outside.NSPath, 9000)

			// Allocation to allocation across nodes keeps its address.
			expectWhoAmI(t, "a→b", allocA.NamespacePath, addrPort(allocB.IP, 80), allocA.IP)
			expectWhoAmI(t, "b→a", allocB.NamespacePath, addrPort(allocA.IP, 80), allocB.IP)
			// Mapped ports from another node, and from node A itself.
			for _, port := range []int{8080, 23456} {
				expectWhoAmI(t, "node b → node a port", b.NSPath, addrPort(a.Addr.String(), port), b.Addr.String())
				expectWhoAmI(t, "node a localhost", a.NSPath, addrPort("127.0.0.1", port), "")
				expectWhoAmI(t, "node a own address", a.NSPath, addrPort(a.Addr.String(), port), "")
			}
			// Hairpin: the allocation reaches its own mapped port through the
			// node address, masqueraded behind the bridge gateway.
			expectWhoAmI(t, "hairpin", allocA.NamespacePath, addrPort(a.Addr.String(), 8080), allocA.Gateway)
			// Another allocation on node A reaches the mapping the same way.
			sibling := mustCreate(t, pa, &network.AllocNetworkRequest{AllocID: "alloc-a2"})
			expectWhoAmI(t, "sibling via node address", sibling.NamespacePath, addrPort(a.Addr.String(), 23456), allocA.Gateway)
			// Egress is masqueraded behind node A's address.
			expectWhoAmI(t, "egress", allocA.NamespacePath, addrPort(outside.Addr.String(), 9000), a.Addr.String())
			if _, err := whoAmI(b.NSPath, addrPort(a.Addr.String(), 8081)); err == nil {
				t.Fatal("unmapped port 8081 answered")
			}

			st, err := pa.Installed(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Allocations) != 2 || st.Allocations[0].AllocID != "alloc-a" || len(st.Routes) != 1 || st.Routes[0] != "10.88.2.0/24" || st.Bridge != "berth0" {
				t.Fatalf("Installed = %+v", st)
			}
			hosts, err := os.ReadFile(allocA.HostsPath)
			if err != nil || !strings.Contains(string(hosts), "10.88.1.2\tweb") {
				t.Fatalf("hosts file: %q %v", hosts, err)
			}
			resolv, err := os.ReadFile(allocA.ResolvConfPath)
			if err != nil || string(resolv) != "nameserver 192.0.2.53\n" {
				t.Fatalf("resolv.conf: %q %v", resolv, err)
			}
			// Peers not listed lose their routes.
			if err := pa.SetPeers(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if st, _ := pa.Installed(context.Background()); len(st.Routes) != 0 {
				t.Fatalf("routes after SetPeers(nil): %v", st.Routes)
			}
			if _, err := whoAmI(allocA.NamespacePath, addrPort(allocB.IP, 80)); err == nil {
				t.Fatal("alloc b still reachable without a route")
			}
		})
	}
}

func TestDestroyRemovesRulesAndReusesAddress(t *testing.T) {
	lab := netlab.New(t, "destroy")
	a := lab.AddNode("a")
	p, cfg := startPlugin(t, a, "10.88.1.0/24", network.RoutingHostGW)
	ctx := context.Background()
	first := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "one", Ports: []network.PortMapping{{Label: "http", HostPort: 8080, Protocol: "tcp"}}})
	second := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "two", Ports: []network.PortMapping{{Label: "http", HostPort: 8081, Protocol: "tcp"}}})
	if !strings.Contains(listTable(t, a), first.IP) {
		t.Fatalf("no map element for %s", first.IP)
	}
	if err := p.DestroyNetwork(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	table := listTable(t, a)
	if strings.Contains(table, first.IP) || strings.Contains(table, "8080") || !strings.Contains(table, second.IP) {
		t.Fatalf("after destroy, table:\n%s", table)
	}
	if _, err := os.Stat(first.NamespacePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace left: %v", err)
	}
	if out, _ := a.Exec(ctx, "ip", "-o", "link"); strings.Contains(string(out), vethName("one")) {
		t.Fatalf("veth left:\n%s", out)
	}
	if err := p.DestroyNetwork(ctx, "one"); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
	third := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "three", Ports: []network.PortMapping{{Label: "http", HostPort: 8080}}})
	if third.IP != first.IP {
		t.Fatalf("released address %s not reused (got %s)", first.IP, third.IP)
	}
	if _, err := os.Stat(cfg.StateDir + "/leases/" + first.IP); err != nil {
		t.Fatalf("lease of reused address: %v", err)
	}
}

func TestRestartReconcile(t *testing.T) {
	lab := netlab.New(t, "restart")
	a := lab.AddNode("a")
	p, cfg := startPlugin(t, a, "10.88.1.0/24", network.RoutingHostGW)
	ctx := context.Background()
	keepReq := &network.AllocNetworkRequest{AllocID: "keep", Ports: []network.PortMapping{{Label: "http", HostPort: 8080, ContainerPort: 80}}}
	kept := mustCreate(t, p, keepReq)
	gone := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "gone", Ports: []network.PortMapping{{Label: "http", HostPort: 9090, Protocol: "udp"}}})
	before := listTable(t, a)

	// A new instance on the same state: SetConfig and CreateNetwork again
	// must neither duplicate nor fail.
	p2 := newPlugin(t, a)
	if err := p2.SetConfig(ctx, cfg); err != nil {
		t.Fatalf("SetConfig after restart: %v", err)
	}
	again, err := p2.CreateNetwork(ctx, keepReq)
	if err != nil {
		t.Fatalf("CreateNetwork after restart: %v", err)
	}
	if again.IP != kept.IP || again.NamespacePath != kept.NamespacePath {
		t.Fatalf("after restart got %+v, want %+v", again, kept)
	}
	if after := listTable(t, a); after != before {
		t.Fatalf("table changed across restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if err := p2.Reconcile(ctx, []string{"keep"}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	table := listTable(t, a)
	if strings.Contains(table, gone.IP) || !strings.Contains(table, kept.IP) {
		t.Fatalf("after reconcile:\n%s", table)
	}
	st, err := p2.Installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Allocations) != 1 || st.Allocations[0].AllocID != "keep" {
		t.Fatalf("Installed after reconcile: %+v", st.Allocations)
	}
	// 9 rules (2×2 dnat, 3 postrouting, 2 forward) + 2 elements (tcp+udp of 8080).
	if st.Rules != 9+2 {
		t.Fatalf("Rules = %d, want 11", st.Rules)
	}
	if _, err := os.Stat(gone.NamespacePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover namespace: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	lab := netlab.New(t, "bad")
	a := lab.AddNode("a")
	ctx := context.Background()
	stateDir := t.TempDir() // before newPlugin: its Cleanup must run first
	p := newPlugin(t, a)
	for name, mutate := range map[string]func(*network.Config){
		"subnet outside cluster": func(c *network.Config) { c.NodeSubnet = "10.89.1.0/24" },
		"subnet larger":          func(c *network.Config) { c.NodeSubnet = "10.0.0.0/8" },
		"invalid cluster":        func(c *network.Config) { c.ClusterCIDR = "10.88.0.0/33" },
		"unknown routing":        func(c *network.Config) { c.Routing = "bgp" },
		"no state dir":           func(c *network.Config) { c.StateDir = "" },
	} {
		cfg := testConfig(t.TempDir(), a, "10.88.1.0/24", network.RoutingHostGW)
		mutate(cfg)
		if err := p.SetConfig(ctx, cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: SetConfig err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if listTable(t, a) != "" {
		t.Fatal("invalid config installed a table")
	}
	if out, _ := a.Exec(ctx, "ip", "-o", "link"); strings.Contains(string(out), "berth0") {
		t.Fatal("invalid config created the bridge")
	}

	cfg := testConfig(stateDir, a, "10.88.1.0/24", network.RoutingHostGW)
	if err := p.SetConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "owner", Ports: []network.PortMapping{{Label: "http", HostPort: 8080, Protocol: "tcp"}}})
	empty := listTable(t, a)
	for name, tc := range map[string]struct {
		req  *network.AllocNetworkRequest
		want error
	}{
		"port 0":       {&network.AllocNetworkRequest{AllocID: "bad", Ports: []network.PortMapping{{Label: "x", HostPort: 0}}}, ErrInvalidRequest},
		"port 70000":   {&network.AllocNetworkRequest{AllocID: "bad", Ports: []network.PortMapping{{Label: "x", HostPort: 70000}}}, ErrInvalidRequest},
		"to 70000":     {&network.AllocNetworkRequest{AllocID: "bad", Ports: []network.PortMapping{{Label: "x", HostPort: 80, ContainerPort: 70000}}}, ErrInvalidRequest},
		"bad protocol": {&network.AllocNetworkRequest{AllocID: "bad", Ports: []network.PortMapping{{Label: "x", HostPort: 80, Protocol: "sctp"}}}, ErrInvalidRequest},
		"unknown mode": {&network.AllocNetworkRequest{AllocID: "bad", Mode: "overlay"}, ErrInvalidRequest},
		"bad alloc id": {&network.AllocNetworkRequest{AllocID: "../x"}, ErrInvalidRequest},
		"taken port": {&network.AllocNetworkRequest{AllocID: "bad", Ports: []network.PortMapping{
			{Label: "ok", HostPort: 9000}, {Label: "taken", HostPort: 8080}}}, ErrPortTaken},
	} {
		if _, err := p.CreateNetwork(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
		if _, err := os.Stat(cfg.StateDir + "/netns/bad"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: namespace half-installed", name)
		}
	}
	if got := listTable(t, a); got != empty {
		t.Fatalf("rejected requests changed the table:\n%s", got)
	}
	st, err := p.Installed(ctx)
	if err != nil || len(st.Allocations) != 1 {
		t.Fatalf("Installed after rejects: %+v %v", st, err)
	}
}

func TestModesAndCleanup(t *testing.T) {
	lab := netlab.New(t, "modes")
	a := lab.AddNode("a")
	b := lab.AddNode("b")
	p, cfg := startPlugin(t, a, "10.88.1.0/24", network.RoutingVXLAN)
	ctx := context.Background()
	if err := p.SetPeers(ctx, []network.Peer{{NodeID: "b", Address: b.Addr.String(), Subnet: "10.88.2.0/24"}}); err != nil {
		t.Fatal(err)
	}
	host := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "host", Mode: network.ModeHost, Hostname: "h"})
	if host.NamespacePath != "" || host.IP != "" {
		t.Fatalf("host mode: %+v", host)
	}
	if _, err := os.Stat(host.HostsPath); err != nil {
		t.Fatal(err)
	}
	none := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "none", Mode: network.ModeNone})
	out, err := netlab.ExecIn(ctx, none.NamespacePath, "ip", "-o", "link")
	if err != nil || strings.Count(string(out), "\n") != 1 || !strings.Contains(string(out), "lo:") || !strings.Contains(string(out), "UP") {
		t.Fatalf("none mode links: %s %v", out, err)
	}
	br := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "br", Ports: []network.PortMapping{{Label: "x", HostPort: 8080}}})

	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if listTable(t, a) != "" {
		t.Fatal("table left after Cleanup")
	}
	links, _ := a.Exec(ctx, "ip", "-o", "link")
	routes, _ := a.Exec(ctx, "ip", "route", "show", "proto", "98")
	if strings.Contains(string(links), "berth0") || strings.Contains(string(links), vxlanDevice) || strings.Contains(string(links), vethPrefix) || len(strings.TrimSpace(string(routes))) != 0 {
		t.Fatalf("left after Cleanup:\n%s\n%s", links, routes)
	}
	for _, path := range []string{none.NamespacePath, br.NamespacePath, cfg.StateDir + "/leases", cfg.StateDir + "/allocs"} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left after Cleanup: %v", path, err)
		}
	}
}

func TestHostIPMapping(t *testing.T) {
	lab := netlab.New(t, "hostip")
	a, b := lab.AddNode("a"), lab.AddNode("b")
	p, _ := startPlugin(t, a, "10.88.1.0/24", network.RoutingHostGW)
	ctx := context.Background()
	bound := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "bound", Ports: []network.PortMapping{
		{Label: "http", HostPort: 8090, ContainerPort: 80, Protocol: "tcp", HostIP: a.Addr.String()}}})
	serveWhoAmI(t, bound.NamespacePath, 80)
	expectWhoAmI(t, "bound address from node b", b.NSPath, addrPort(a.Addr.String(), 8090), b.Addr.String())
	if _, err := whoAmI(a.NSPath, addrPort("127.0.0.1", 8090)); err == nil {
		t.Fatal("mapping bound to the node address answered on localhost")
	}
	_, err := p.CreateNetwork(ctx, &network.AllocNetworkRequest{AllocID: "wild", Ports: []network.PortMapping{{Label: "http", HostPort: 8090, Protocol: "tcp"}}})
	if !errors.Is(err, ErrPortTaken) {
		t.Fatalf("wildcard over a bound port: err = %v, want ErrPortTaken", err)
	}
	_, err = p.CreateNetwork(ctx, &network.AllocNetworkRequest{AllocID: "dup", Ports: []network.PortMapping{
		{Label: "a", HostPort: 8100, Protocol: "tcp"}, {Label: "b", HostPort: 8100, Protocol: "tcp", HostIP: a.Addr.String()}}})
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("duplicate within a request: err = %v, want ErrInvalidRequest", err)
	}
}

func TestRollbackWhenSubnetFull(t *testing.T) {
	lab := netlab.New(t, "full")
	a := lab.AddNode("a")
	// A /30 has one allocation address: .1 is the gateway, .3 broadcast.
	p, cfg := startPlugin(t, a, "10.88.1.0/30", network.RoutingHostGW)
	ctx := context.Background()
	mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "first"})
	before := listTable(t, a)
	_, err := p.CreateNetwork(ctx, &network.AllocNetworkRequest{AllocID: "second", Ports: []network.PortMapping{{Label: "x", HostPort: 8080}}})
	if !errors.Is(err, ErrSubnetFull) {
		t.Fatalf("err = %v, want ErrSubnetFull", err)
	}
	if _, err := os.Stat(cfg.StateDir + "/netns/second"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace of the failed allocation left: %v", err)
	}
	if _, err := os.Stat(cfg.StateDir + "/allocs/second"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state of the failed allocation left: %v", err)
	}
	if after := listTable(t, a); after != before {
		t.Fatalf("failed create changed the table:\n%s", after)
	}
}

func TestConcurrentCreate(t *testing.T) {
	lab := netlab.New(t, "conc")
	a := lab.AddNode("a")
	p, _ := startPlugin(t, a, "10.88.1.0/24", network.RoutingHostGW)
	const n = 12
	ips := make(chan string, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			an, err := p.CreateNetwork(context.Background(), &network.AllocNetworkRequest{
				AllocID: fmt.Sprintf("c%d", i), Ports: []network.PortMapping{{Label: "x", HostPort: 30000 + i}}})
			if err != nil {
				errs <- err
				return
			}
			ips <- an.IP
		}()
	}
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			t.Fatal(err)
		case ip := <-ips:
			if seen[ip] {
				t.Fatalf("address %s handed out twice", ip)
			}
			seen[ip] = true
		case <-time.After(30 * time.Second):
			t.Fatal("concurrent creates did not finish")
		}
	}
	st, err := p.Installed(context.Background())
	if err != nil || len(st.Allocations) != n || st.Rules != 9+2*n {
		t.Fatalf("Installed: %d allocations, %d rules, %v", len(st.Allocations), st.Rules, err)
	}
}
