package agent

import (
	"context"
	"reflect"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// peersLoop follows the other nodes' subnets with a blocking query and
// programs routes to them on every change.
func (m *netManager) peersLoop(ctx context.Context) {
	var index uint64
	bo := newBackoff(100*time.Millisecond, 10*time.Second)
	var last []network.Peer
	applied := false
	for ctx.Err() == nil {
		var resp []*structs.NodePeer
		var meta *api.QueryMeta
		err := m.a.call(func(c *api.ClientNodes) error {
			var err error
			resp, meta, err = c.Peers(m.a.nodeID, m.a.secret,
				(&api.QueryOptions{WaitIndex: index, WaitTime: peersWait}).WithContext(ctx))
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.logger.Warn("watch network peers failed", "error", err)
			sleepCtx(ctx, bo.next())
			continue
		}
		bo.reset()
		if meta.LastIndex < index {
			index = 0 // a server behind or reset: start over
		} else {
			index = meta.LastIndex
		}
		peers := toPeers(m.a.nodeID, resp)
		if applied && reflect.DeepEqual(peers, last) {
			continue
		}
		if !m.setPeers(ctx, peers) {
			return
		}
		last, applied = peers, true
	}
}

// setPeers retries SetPeers until it succeeds; false when ctx ended.
func (m *netManager) setPeers(ctx context.Context, peers []network.Peer) bool {
	bo := newBackoff(100*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, networkCallTimeout)
		err := m.plugin().SetPeers(cctx, peers)
		cancel()
		if err == nil {
			m.mu.Lock()
			m.peers = peers
			m.mu.Unlock()
			m.logger.Info("network peers programmed", "peers", len(peers))
			return true
		}
		m.logger.Warn("set network peers failed", "error", err)
		sleepCtx(ctx, bo.next())
	}
	return false
}

// toPeers converts the servers' peer list, leaving out this node and
// peers without a subnet or address. Never nil: an empty list removes
// every route.
func toPeers(self string, in []*structs.NodePeer) []network.Peer {
	out := []network.Peer{}
	for _, p := range in {
		if p == nil || p.NodeID == self || p.Address == "" || (p.Subnet == "" && p.Subnet6 == "") {
			continue
		}
		out = append(out, network.Peer{NodeID: p.NodeID, Address: p.Address, Subnet: p.Subnet, Subnet6: p.Subnet6})
	}
	return out
}
