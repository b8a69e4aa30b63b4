package server_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// netNode is a node that runs a network plugin, so it wants a subnet.
func netNode(status string) *structs.Node {
	n := simNode(status)
	n.Attributes[structs.NodeNetworkPluginAttribute] = "nft"
	return n
}

// registerVia registers n through the server at addr; safe from any
// goroutine.
func registerVia(addr string, n *structs.Node) (*structs.NodeHeartbeatResponse, error) {
	c, err := api.NewClient(&api.Config{Address: "http://" + addr, Timeout: 15 * time.Second})
	if err != nil {
		return nil, err
	}
	return c.ClientNodes().Register(n, nil)
}

// asAgentRestart is n as an agent sends it after a restart: its own
// fingerprint, not the subnet the servers gave it.
func asAgentRestart(n *structs.Node) *structs.Node {
	c := *n
	c.NetworkSubnet, c.NetworkSubnet6 = "", ""
	return &c
}

// TestNodeSubnetsUniqueAcrossCluster: 50 nodes registering at once through
// all three servers get distinct subnets, the lowest ones of the CIDR;
// they keep them when they register again, and after a leader failover.
func TestNodeSubnetsUniqueAcrossCluster(t *testing.T) {
	t.Parallel()
	const nodes = 50
	c := servertest.NewCluster(t, 3, servertest.WithoutSchedulers())
	addrs := make([]string, 0, 3)
	for _, s := range c.Servers() {
		addrs = append(addrs, s.HTTPAddr())
	}
	fleet := make([]*structs.Node, nodes)
	for i := range fleet {
		fleet[i] = netNode(structs.NodeStatusReady)
	}
	registerAll := func(what string, via []string) map[string]string {
		t.Helper()
		got := make(map[string]string, nodes)
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, nodes)
		for i, n := range fleet {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := registerVia(via[i%len(via)], asAgentRestart(n))
				if err != nil {
					errs <- fmt.Errorf("%s: register %s: %w", what, n.ID, err)
					return
				}
				mu.Lock()
				got[n.ID] = resp.NetworkSubnet
				mu.Unlock()
				if resp.ClusterCIDR != server.DefaultClusterCIDR || resp.NetworkSubnet6 != "" || resp.ClusterCIDR6 != "" {
					errs <- fmt.Errorf("%s: register answer %+v", what, resp)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
		return got
	}

	first := registerAll("first registration", addrs)
	want := map[string]bool{}
	for i := 0; i < nodes; i++ {
		want[fmt.Sprintf("10.88.%d.0/24", i)] = true
	}
	seen := map[string]string{}
	for id, subnet := range first {
		if other, dup := seen[subnet]; dup {
			t.Fatalf("nodes %s and %s both got %s", other, id, subnet)
		}
		seen[subnet] = id
		if !want[subnet] {
			t.Errorf("node %s got %q, not one of the %d lowest /24s of 10.88.0.0/16", id, subnet, nodes)
		}
	}
	// every server's state agrees with the answers
	for _, s := range c.Servers() {
		servertest.WaitFor(t, 10*time.Second, s.Name()+" to hold the subnets", func() bool {
			for id, subnet := range first {
				if n, _ := s.State().NodeByID(nil, id); n == nil || n.NetworkSubnet != subnet {
					return false
				}
			}
			return true
		})
	}

	again := registerAll("re-registration", addrs)
	for id, subnet := range first {
		if again[id] != subnet {
			t.Errorf("node %s re-registered with %s, had %s", id, again[id], subnet)
		}
	}

	li, _ := c.Leader()
	c.Kill(li)
	_, leader := c.WaitForLeader(15 * time.Second)
	after := registerAll("after failover", []string{leader.HTTPAddr()})
	for id, subnet := range first {
		if after[id] != subnet {
			t.Errorf("after failover node %s has %s, had %s", id, after[id], subnet)
		}
	}
	resp, err := registerVia(leader.HTTPAddr(), netNode(structs.NodeStatusReady))
	if err != nil {
		t.Fatal(err)
	}
	if resp.NetworkSubnet != fmt.Sprintf("10.88.%d.0/24", nodes) {
		t.Errorf("new node after failover got %s, want the lowest free 10.88.%d.0/24", resp.NetworkSubnet, nodes)
	}
}

// TestNodeSubnetExhaustion: a full CIDR refuses new nodes with a clear
// error; down nodes keep their subnets, and get them back.
func TestNodeSubnetExhaustion(t *testing.T) {
	t.Parallel()
	const ttl = 500 * time.Millisecond
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers(), servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.ClusterCIDR = "10.99.0.0/22"
		cfg.MinHeartbeatTTL = ttl
		cfg.HeartbeatGrace = ttl / 2
		cfg.FailoverHeartbeatTTL = ttl
	}))
	_, s := c.WaitForLeader(15 * time.Second)
	fleet := make([]*structs.Node, 4)
	for i := range fleet {
		fleet[i] = netNode(structs.NodeStatusReady)
		resp, err := registerVia(s.HTTPAddr(), fleet[i])
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("10.99.%d.0/24", i); resp.NetworkSubnet != want || resp.ClusterCIDR != "10.99.0.0/22" {
			t.Fatalf("node %d: subnet %s in %s, want %s", i, resp.NetworkSubnet, resp.ClusterCIDR, want)
		}
	}
	extra := netNode(structs.NodeStatusReady)
	wantMsg := "no free /24 left in 10.99.0.0/22: 4 nodes hold all of them"
	_, err := registerVia(s.HTTPAddr(), extra)
	if api.StatusCode(err) != http.StatusConflict || !strings.Contains(err.Error(), wantMsg) {
		t.Fatalf("register on a full CIDR: %v, want 409 %q", err, wantMsg)
	}
	if n, _ := s.State().NodeByID(nil, extra.ID); n != nil {
		t.Fatalf("refused node was stored: %+v", n)
	}
	// a node without allocation networking needs no subnet: still welcome
	plain := simNode(structs.NodeStatusReady)
	if resp, err := registerVia(s.HTTPAddr(), plain); err != nil || resp.NetworkSubnet != "" || resp.ClusterCIDR != "10.99.0.0/22" {
		t.Fatalf("node without a network plugin on a full CIDR: %+v, %v", resp, err)
	}

	servertest.WaitFor(t, 15*time.Second, "every node to be marked down", func() bool {
		for _, n := range fleet {
			if nodeStatus(t, s, n.ID) != structs.NodeStatusDown {
				return false
			}
		}
		return true
	})
	if _, err := registerVia(s.HTTPAddr(), extra); api.StatusCode(err) != http.StatusConflict {
		t.Fatalf("down nodes released their subnets: register = %v", err)
	}
	back := asAgentRestart(fleet[2])
	resp, err := registerVia(s.HTTPAddr(), back)
	if err != nil {
		t.Fatal(err)
	}
	if resp.NetworkSubnet != "10.99.2.0/24" {
		t.Fatalf("node back from down got %s, had 10.99.2.0/24", resp.NetworkSubnet)
	}
}

// TestNodeAsksForSubnet: a node may name its subnet if it is one of the
// CIDR's and free; anything else is a 400 naming the problem.
func TestNodeAsksForSubnet(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers())
	_, s := c.WaitForLeader(15 * time.Second)
	addr := s.HTTPAddr()
	if resp, err := registerVia(addr, netNode(structs.NodeStatusReady)); err != nil || resp.NetworkSubnet != "10.88.0.0/24" {
		t.Fatalf("first node: %+v, %v", resp, err)
	}
	asker := netNode(structs.NodeStatusReady)
	asker.NetworkSubnet = "10.88.7.0/24"
	if resp, err := registerVia(addr, asker); err != nil || resp.NetworkSubnet != "10.88.7.0/24" {
		t.Fatalf("node asking for a free subnet: %+v, %v", resp, err)
	}
	for _, tc := range []struct{ name, subnet, subnet6, msg string }{
		{"Taken", "10.88.7.0/24", "", "which node " + asker.ID + " holds"},
		{"OutsideCIDR", "10.89.0.0/24", "", "not a /24 of 10.88.0.0/16"},
		{"WrongSize", "10.88.8.0/25", "", "not a /24 of 10.88.0.0/16"},
		{"HostBits", "10.88.8.1/24", "", "not a /24 of 10.88.0.0/16"},
		{"Garbage", "banana", "", "banana"},
		{"IPv6WithoutCIDR6", "", "fd88::/64", "no IPv6 alloc CIDR"},
	} {
		n := netNode(structs.NodeStatusReady)
		n.NetworkSubnet, n.NetworkSubnet6 = tc.subnet, tc.subnet6
		_, err := registerVia(addr, n)
		if api.StatusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want 400 saying %q", tc.name, err, tc.msg)
		}
	}
	// the lowest free one skips both holders
	if resp, err := registerVia(addr, netNode(structs.NodeStatusReady)); err != nil || resp.NetworkSubnet != "10.88.1.0/24" {
		t.Fatalf("next node: %+v, %v", resp, err)
	}
	// the holder re-registering with the subnet it has is fine
	if resp, err := registerVia(addr, asker); err != nil || resp.NetworkSubnet != "10.88.7.0/24" {
		t.Fatalf("holder re-registering: %+v, %v", resp, err)
	}
}

// TestNodeSubnetsDualStack: with an IPv6 CIDR every node gets a /64 too,
// and the heartbeat answer repeats the node's network.
func TestNodeSubnetsDualStack(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers(), servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.ClusterCIDR6 = "fd88::/48"
	}))
	_, s := c.WaitForLeader(15 * time.Second)
	for i, want6 := range []string{"fd88::/64", "fd88:0:0:1::/64"} {
		n := netNode(structs.NodeStatusReady)
		resp, err := registerVia(s.HTTPAddr(), n)
		if err != nil {
			t.Fatal(err)
		}
		if resp.NetworkSubnet != fmt.Sprintf("10.88.%d.0/24", i) || resp.NetworkSubnet6 != want6 || resp.ClusterCIDR6 != "fd88::/48" {
			t.Fatalf("node %d: %+v, want IPv6 %s", i, resp, want6)
		}
		hb, err := client(t, s).ClientNodes().Heartbeat(n.ID, n.SecretID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hb.NetworkSubnet != resp.NetworkSubnet || hb.NetworkSubnet6 != want6 || hb.ClusterCIDR != server.DefaultClusterCIDR {
			t.Fatalf("heartbeat answer %+v", hb)
		}
	}
}

// TestNodeSubnetsOff: an empty ClusterCIDR turns IPAM off.
func TestNodeSubnetsOff(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers(), servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.ClusterCIDR = ""
	}))
	_, s := c.WaitForLeader(15 * time.Second)
	n := netNode(structs.NodeStatusReady)
	resp, err := registerVia(s.HTTPAddr(), n)
	if err != nil || resp.NetworkSubnet != "" || resp.ClusterCIDR != "" {
		t.Fatalf("register without IPAM: %+v, %v", resp, err)
	}
	if stored, _ := s.State().NodeByID(nil, n.ID); stored.NetworkSubnet != "" {
		t.Fatalf("stored subnet %q without IPAM", stored.NetworkSubnet)
	}
}

// TestBadAllocCIDRConfig: server start refuses unusable allocation
// networks, saying why.
func TestBadAllocCIDRConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		cidr, cidr6 string
		bits, bits6 int
		msg         string
	}{
		{"NoMask", "10.88.0.0", "", 24, 0, `alloc CIDR "10.88.0.0"`},
		{"BadMask", "10.88.0.0/33", "", 24, 0, `alloc CIDR "10.88.0.0/33"`},
		{"IPv6InIPv4", "fd88::/48", "", 24, 0, "is not an IPv4 CIDR"},
		{"HostBits", "10.88.1.0/16", "", 24, 0, "did you mean 10.88.0.0/16?"},
		{"SubnetBiggerThanCIDR", "10.88.0.0/16", "", 8, 0, "node subnet size /8 does not fit alloc CIDR 10.88.0.0/16"},
		{"SubnetTooSmall", "10.88.0.0/16", "", 31, 0, "between /16 and /30"},
		{"IPv4InIPv6", "10.88.0.0/16", "10.0.0.0/8", 24, 64, "is not an IPv6 CIDR"},
		{"IPv6SubnetTooBig", "10.88.0.0/16", "fd88::/48", 24, 40, "node subnet size /40 does not fit alloc CIDR6 fd88::/48"},
		{"IPv6Garbage", "10.88.0.0/16", "fd88::zz/48", 24, 64, `alloc CIDR6 "fd88::zz/48"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := server.DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.BindAddr = "127.0.0.1"
			cfg.HTTPPort, cfg.RaftPort, cfg.GossipPort = 0, 0, 0
			cfg.BootstrapExpect = 1
			cfg.ClusterCIDR, cfg.ClusterCIDR6 = tc.cidr, tc.cidr6
			cfg.NodeSubnetBits, cfg.NodeSubnetBits6 = tc.bits, tc.bits6
			s, err := server.New(cfg)
			if err == nil {
				s.Shutdown()
				t.Fatalf("server started with alloc CIDR %q/%d, %q/%d", tc.cidr, tc.bits, tc.cidr6, tc.bits6)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			// refused before anything was written
			if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 0 {
				t.Errorf("data dir written: %v", entries)
			}
		})
	}
}

// subnetsDistinct is a sanity check used by the peers tests too.
func subnetsDistinct(t *testing.T, peers []*structs.NodePeer) {
	t.Helper()
	seen := map[netip.Prefix]string{}
	for _, p := range peers {
		pfx, err := netip.ParsePrefix(p.Subnet)
		if err != nil {
			t.Fatalf("peer %s subnet %q: %v", p.NodeID, p.Subnet, err)
		}
		if other, dup := seen[pfx]; dup {
			t.Fatalf("peers %s and %s share %s", other, p.NodeID, pfx)
		}
		seen[pfx] = p.NodeID
	}
}
