package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

func nodePeersByID(peers []*structs.NodePeer) map[string]*structs.NodePeer {
	out := make(map[string]*structs.NodePeer, len(peers))
	for _, p := range peers {
		out[p.NodeID] = p
	}
	return out
}

// keepAlive heartbeats nodes until the test ends, so that only the others
// time out.
func keepAlive(t *testing.T, c *api.Client, every time.Duration, nodes ...*structs.Node) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			for _, n := range nodes {
				if _, err := c.ClientNodes().Heartbeat(n.ID, n.SecretID, nil); err != nil {
					t.Logf("heartbeat %s: %v", n.Name, err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// TestClientNodePeers: a node's peers are the other ready nodes with
// their subnets and addresses; the list is a blocking query that wakes
// when a node joins and drops nodes that go down.
func TestClientNodePeers(t *testing.T) {
	t.Parallel()
	const ttl = time.Second
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers(), servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.MinHeartbeatTTL = ttl
		cfg.HeartbeatGrace = ttl / 2
		cfg.FailoverHeartbeatTTL = ttl
	}))
	_, s := c.WaitForLeader(15 * time.Second)
	cl := client(t, s)

	self := netNode(structs.NodeStatusReady)
	withAttr := netNode(structs.NodeStatusReady)
	withAttr.Attributes[structs.NodeAddressAttribute] = "192.0.2.2"
	withHTTP := netNode(structs.NodeStatusReady)
	withHTTP.HTTPAddr = "192.0.2.3:4646"
	initializing := netNode(structs.NodeStatusInit)
	for _, n := range []*structs.Node{self, withAttr, withHTTP, initializing} {
		registerNode(t, cl, n)
	}
	keepAlive(t, cl, ttl/4, self, withAttr)

	peers, qm, err := cl.ClientNodes().Peers(self.ID, self.SecretID, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := nodePeersByID(peers)
	if len(got) != 2 || got[withAttr.ID] == nil || got[withHTTP.ID] == nil {
		t.Fatalf("peers = %+v, want the two other ready nodes", peers)
	}
	subnetsDistinct(t, peers)
	if p := got[withAttr.ID]; p.Address != "192.0.2.2" || p.Subnet != "10.88.1.0/24" || p.Status != structs.NodeStatusReady || p.Name != withAttr.Name {
		t.Errorf("peer with address attribute = %+v", p)
	}
	if p := got[withHTTP.ID]; p.Address != "192.0.2.3" || p.Subnet != "10.88.2.0/24" {
		t.Errorf("peer with HTTP address = %+v", p)
	}
	if qm.LastIndex == 0 {
		t.Fatal("peers answer carries no index")
	}

	// the node's secret is required
	for _, secret := range []string{"", "wrong"} {
		if _, _, err := cl.ClientNodes().Peers(self.ID, secret, nil); api.StatusCode(err) != http.StatusForbidden {
			t.Errorf("peers with secret %q: %v, want 403", secret, err)
		}
	}
	if _, _, err := cl.ClientNodes().Peers("7e57a0de-0000-4000-8000-999999999999", self.SecretID, nil); api.StatusCode(err) != http.StatusNotFound {
		t.Errorf("peers of an unknown node: %v, want 404", err)
	}

	// a blocking query waits, then wakes on a new node
	type answer struct {
		peers []*structs.NodePeer
		qm    *api.QueryMeta
		err   error
	}
	wait := func(index uint64) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			p, m, err := cl.ClientNodes().Peers(self.ID, self.SecretID, &api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second})
			ch <- answer{p, m, err}
		}()
		return ch
	}
	ch := wait(qm.LastIndex)
	select {
	case a := <-ch:
		t.Fatalf("blocking query answered with nothing changed: %+v, %v", a.peers, a.err)
	case <-time.After(300 * time.Millisecond):
	}
	joiner := netNode(structs.NodeStatusReady)
	registerNode(t, cl, joiner)
	var a answer
	select {
	case a = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query did not wake on a new node")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	if p := nodePeersByID(a.peers)[joiner.ID]; p == nil || p.Subnet != "10.88.4.0/24" {
		t.Fatalf("after a join peers = %+v", a.peers)
	}

	// nodes that stop heartbeating go down and leave the list; follow the
	// blocking query until they have
	index := a.qm.LastIndex
	deadline := time.Now().Add(15 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("down nodes still listed: %+v", a.peers)
		}
		a = <-wait(index)
		if a.err != nil {
			t.Fatal(a.err)
		}
		index = a.qm.LastIndex
		got := nodePeersByID(a.peers)
		if got[withHTTP.ID] == nil && got[joiner.ID] == nil {
			if len(got) != 1 || got[withAttr.ID] == nil {
				t.Fatalf("after the others went down peers = %+v, want only the live one", a.peers)
			}
			break
		}
	}
	if st := nodeStatus(t, s, withHTTP.ID); st != structs.NodeStatusDown {
		t.Fatalf("node left the peers but is %s", st)
	}
	// a down node keeps its subnet and is listed again when it is back
	if _, err := cl.ClientNodes().Heartbeat(withHTTP.ID, withHTTP.SecretID, nil); err != nil {
		t.Fatal(err)
	}
	peers, _, err = cl.ClientNodes().Peers(self.ID, self.SecretID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := nodePeersByID(peers)[withHTTP.ID]; p == nil || p.Subnet != "10.88.2.0/24" {
		t.Fatalf("node back from down: peers = %+v", peers)
	}
}
