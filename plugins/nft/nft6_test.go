package nft

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/netlab"
	"github.com/berth-dev/berth/plugins/network"
)

const testCluster6 = "fd88::/48"

// startPlugin6 is startPlugin with a dual-stack config: subnet is the
// IPv4 node subnet, subnet6 the IPv6 one.
func startPlugin6(t testing.TB, node *netlab.Node, subnet, subnet6, routing string) (*Plugin, *network.Config) {
	t.Helper()
	cfg := testConfig(t.TempDir(), node, subnet, routing)
	cfg.ClusterCIDR6, cfg.NodeSubnet6 = testCluster6, subnet6
	p := newPlugin(t, node)
	if err := p.SetConfig(context.Background(), cfg); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	return p, cfg
}

// twoNodes6 is twoNodes, dual-stack: A has fd88:0:0:1::/64, B fd88:0:0:2::/64.
func twoNodes6(t *testing.T, routing string) (lab *netlab.Lab, a, b *netlab.Node, pa, pb *Plugin) {
	lab = netlab.New(t, "nft6")
	a, b = lab.AddNode("a"), lab.AddNode("b")
	pa, _ = startPlugin6(t, a, "10.88.1.0/24", "fd88:0:0:1::/64", routing)
	pb, _ = startPlugin6(t, b, "10.88.2.0/24", "fd88:0:0:2::/64", routing)
	ctx := context.Background()
	if err := pa.SetPeers(ctx, []network.Peer{{NodeID: "b", Address: b.Addr.String(), Subnet: "10.88.2.0/24", Subnet6: "fd88:0:0:2::/64"}}); err != nil {
		t.Fatalf("SetPeers a: %v", err)
	}
	if err := pb.SetPeers(ctx, []network.Peer{{NodeID: "a", Address: a.Addr.String(), Subnet: "10.88.1.0/24", Subnet6: "fd88:0:0:1::/64"}}); err != nil {
		t.Fatalf("SetPeers b: %v", err)
	}
	return lab, a, b, pa, pb
}

func TestDualStack(t *testing.T) {
	for _, routing := range []string{network.RoutingHostGW, network.RoutingVXLAN} {
		t.Run(routing, func(t *testing.T) {
			_, a, b, pa, pb := twoNodes6(t, routing)
			allocA := mustCreate(t, pa, &network.AllocNetworkRequest{AllocID: "alloc-a", Hostname: "web",
				Ports: []network.PortMapping{
					{Label: "static", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
					{Label: "bound6", HostPort: 8443, ContainerPort: 80, Protocol: "tcp", HostIP: a.Addr6.String()},
				}})
			allocB := mustCreate(t, pb, &network.AllocNetworkRequest{AllocID: "alloc-b"})
			if allocA.IP != "10.88.1.2" || allocA.IP6 != "fd88:0:0:1::2" || allocB.IP6 != "fd88:0:0:2::2" {
				t.Fatalf("unexpected addresses: a=%s/%s b=%s", allocA.IP, allocA.IP6, allocB.IP6)
			}
			gw6 := "fd88:0:0:1::1"
			serveWhoAmI(t, allocA.NamespacePath, 80)
			serveWhoAmI(t, allocB.NamespacePath, 80)
			serveWhoAmI(t, b.NSPath, 9000)

			// The node reaches its allocation over IPv6 from the bridge address.
			expectWhoAmI(t, "node a → alloc a (v6)", a.NSPath, addrPort(allocA.IP6, 80), gw6)
			// IPv4 keeps working next to it.
			expectWhoAmI(t, "node a → alloc a (v4)", a.NSPath, addrPort(allocA.IP, 80), allocA.Gateway)
			// Allocation to allocation across nodes keeps its IPv6 address
			// (vxlan only: host-gw does not route peers' IPv6 subnets).
			wantRoutes := "10.88.2.0/24"
			if routing == network.RoutingVXLAN {
				wantRoutes += ",fd88:0:0:2::/64"
				expectWhoAmI(t, "a→b (v6)", allocA.NamespacePath, addrPort(allocB.IP6, 80), allocA.IP6)
				expectWhoAmI(t, "b→a (v6)", allocB.NamespacePath, addrPort(allocA.IP6, 80), allocB.IP6)
			} else if _, err := whoAmI(allocA.NamespacePath, addrPort(allocB.IP6, 80)); err == nil {
				t.Fatal("host-gw: a→b over IPv6 answered without a route")
			}
			expectWhoAmI(t, "a→b (v4)", allocA.NamespacePath, addrPort(allocB.IP, 80), allocA.IP)
			// Port mappings over the node's IPv6 address, from another node
			// and from the node itself; the HostIP-bound one only there.
			expectWhoAmI(t, "node b → [node a]:8080", b.NSPath, addrPort(a.Addr6.String(), 8080), b.Addr6.String())
			expectWhoAmI(t, "node b → [node a]:8443", b.NSPath, addrPort(a.Addr6.String(), 8443), b.Addr6.String())
			expectWhoAmI(t, "node a → own [address]:8080", a.NSPath, addrPort(a.Addr6.String(), 8080), "")
			expectWhoAmI(t, "node b → node a:8080 (v4)", b.NSPath, addrPort(a.Addr.String(), 8080), b.Addr.String())
			if _, err := whoAmI(b.NSPath, addrPort(a.Addr.String(), 8443)); err == nil {
				t.Fatal("IPv6-bound mapping 8443 answered on node a's IPv4 address")
			}
			// Hairpin over IPv6: masqueraded behind the bridge address.
			expectWhoAmI(t, "hairpin (v6)", allocA.NamespacePath, addrPort(a.Addr6.String(), 8080), gw6)
			// Egress out of ClusterCIDR6 is masqueraded behind node A's address.
			expectWhoAmI(t, "egress (v6)", allocA.NamespacePath, addrPort(b.Addr6.String(), 9000), a.Addr6.String())

			st, err := pa.Installed(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(st.Routes, ",") != wantRoutes {
				t.Fatalf("Installed routes = %v", st.Routes)
			}
			if len(st.Allocations) != 1 || st.Allocations[0].IP6 != allocA.IP6 {
				t.Fatalf("Installed allocations = %+v", st.Allocations)
			}
			hosts, err := os.ReadFile(allocA.HostsPath)
			if err != nil || !strings.Contains(string(hosts), allocA.IP6+"\tweb") {
				t.Fatalf("hosts (%v):\n%s", err, hosts)
			}
			// Dropping the peer removes its IPv6 route too.
			if err := pa.SetPeers(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if out, _ := a.Exec(context.Background(), "ip", "-6", "route"); strings.Contains(string(out), "fd88:0:0:2::") {
				t.Fatalf("IPv6 peer route left:\n%s", out)
			}
		})
	}
}

func TestDualStackDestroyReleasesLease(t *testing.T) {
	lab := netlab.New(t, "destroy6")
	a := lab.AddNode("a")
	p, cfg := startPlugin6(t, a, "10.88.1.0/24", "fd88:0:0:1::/64", network.RoutingHostGW)
	ctx := context.Background()
	first := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "one", Ports: []network.PortMapping{{Label: "http", HostPort: 8080, Protocol: "tcp"}}})
	second := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "two"})
	lease := filepath.Join(cfg.StateDir, leases6Dir, first.IP6)
	if b, err := os.ReadFile(lease); err != nil || string(b) != "one" {
		t.Fatalf("IPv6 lease %s: %q, %v", lease, b, err)
	}
	if !strings.Contains(listTable(t, a), first.IP6) {
		t.Fatalf("no IPv6 map element for %s:\n%s", first.IP6, listTable(t, a))
	}
	if err := p.DestroyNetwork(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lease); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("IPv6 lease left after destroy: %v", err)
	}
	if table := listTable(t, a); strings.Contains(table, first.IP6) || strings.Contains(table, "8080") {
		t.Fatalf("after destroy, table:\n%s", table)
	}
	third := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "three"})
	if third.IP6 != first.IP6 || second.IP6 == first.IP6 {
		t.Fatalf("released IPv6 address %s not reused (got %s, second %s)", first.IP6, third.IP6, second.IP6)
	}
}

func TestDualStackRestartReconcile(t *testing.T) {
	lab := netlab.New(t, "restart6")
	a := lab.AddNode("a")
	p, cfg := startPlugin6(t, a, "10.88.1.0/24", "fd88:0:0:1::/64", network.RoutingHostGW)
	ctx := context.Background()
	keepReq := &network.AllocNetworkRequest{AllocID: "keep", Ports: []network.PortMapping{{Label: "http", HostPort: 8080, ContainerPort: 80}}}
	kept := mustCreate(t, p, keepReq)
	gone := mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "gone", Ports: []network.PortMapping{{Label: "dns", HostPort: 9053, Protocol: "udp"}}})
	before := listTable(t, a)

	p2 := newPlugin(t, a)
	if err := p2.SetConfig(ctx, cfg); err != nil {
		t.Fatalf("SetConfig after restart: %v", err)
	}
	again, err := p2.CreateNetwork(ctx, keepReq)
	if err != nil {
		t.Fatalf("CreateNetwork after restart: %v", err)
	}
	if again.IP6 != kept.IP6 || again.IP != kept.IP {
		t.Fatalf("after restart got %+v, want %+v", again, kept)
	}
	if after := listTable(t, a); after != before {
		t.Fatalf("table changed across restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if err := p2.Reconcile(ctx, []string{"keep"}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if table := listTable(t, a); strings.Contains(table, gone.IP6) || !strings.Contains(table, kept.IP6) {
		t.Fatalf("after reconcile:\n%s", table)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, leases6Dir, gone.IP6)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("IPv6 lease of reconciled allocation left: %v", err)
	}
	st, err := p2.Installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 15 rules (IPv4: 2×2 dnat, 3 postrouting, 2 forward; IPv6: 2×2 dnat,
	// 2 postrouting) + 4 elements (tcp+udp of 8080, in both families).
	if st.Rules != 15+4 {
		t.Fatalf("Rules = %d, want 19", st.Rules)
	}
}

func TestDualStackBadInput(t *testing.T) {
	lab := netlab.New(t, "bad6")
	a := lab.AddNode("a")
	ctx := context.Background()
	p := newPlugin(t, a)
	for name, mutate := range map[string]func(*network.Config){
		"no ClusterCIDR6":       func(c *network.Config) { c.ClusterCIDR6 = "" },
		"subnet6 outside":       func(c *network.Config) { c.NodeSubnet6 = "fd77:0:0:1::/64" },
		"subnet6 is IPv4":       func(c *network.Config) { c.NodeSubnet6 = "10.88.1.0/24" },
		"subnet6 too small":     func(c *network.Config) { c.NodeSubnet6 = "fd88::/127" },
		"ClusterCIDR6 is IPv4":  func(c *network.Config) { c.ClusterCIDR6 = "10.0.0.0/8" },
		"subnet6 wider than it": func(c *network.Config) { c.NodeSubnet6 = "fd88::/32" },
	} {
		cfg := testConfig(t.TempDir(), a, "10.88.1.0/24", network.RoutingHostGW)
		cfg.ClusterCIDR6, cfg.NodeSubnet6 = testCluster6, "fd88:0:0:1::/64"
		mutate(cfg)
		if err := p.SetConfig(ctx, cfg); !errors.Is(err, network.ErrInvalidRequest) {
			t.Errorf("%s: SetConfig error = %v, want ErrInvalidRequest", name, err)
		}
	}
	// An IPv6 host IP needs an IPv6 node subnet.
	p4, _ := startPlugin(t, a, "10.88.1.0/24", network.RoutingHostGW)
	_, err := p4.CreateNetwork(ctx, &network.AllocNetworkRequest{AllocID: "v6hostip", Ports: []network.PortMapping{{Label: "x", HostPort: 8080, HostIP: a.Addr6.String()}}})
	if !errors.Is(err, network.ErrInvalidRequest) {
		t.Fatalf("IPv6 HostIP on an IPv4-only node: %v, want ErrInvalidRequest", err)
	}
	// An IPv4-only node ignores peers' IPv6 subnets; peers with only one is fine.
	if err := p4.SetPeers(ctx, []network.Peer{{NodeID: "b", Address: "10.99.0.3", Subnet6: "fd88:0:0:2::/64"}}); err != nil {
		t.Fatalf("SetPeers with IPv6-only peer on IPv4 node: %v", err)
	}
	if err := p4.SetPeers(ctx, []network.Peer{{NodeID: "b", Address: "10.99.0.3"}}); !errors.Is(err, network.ErrInvalidRequest) {
		t.Fatalf("SetPeers with a peer without subnets: %v, want ErrInvalidRequest", err)
	}
}
