package server

import (
	"net"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// clientNodePeers (GET /v1/client/node/:id/peers) lists the allocation
// subnets of every other ready node and the address to route each
// through, for the agent's network plugin (SetPeers). Down, disconnected
// and initializing nodes are left out, so their routes are withdrawn
// (their subnets stay reserved for when they come back). It is a blocking
// query on the nodes table: any node change wakes it, because a node
// leaving the list changes no remaining node.
func (s *Server) clientNodePeers(req *request) (any, error) {
	nodeID := req.PathValue("id")
	if _, err := s.authNode(req, nodeID); err != nil {
		return nil, err
	}
	var out []*structs.NodePeer
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		nodes, err := st.Nodes(ws, "")
		if err != nil {
			return 0, err
		}
		out = nodePeers(nodes, nodeID)
		return st.Index(ws, state.TableNodes), nil
	})
	return out, err
}

// nodePeers turns the node list into the peers of self, sorted by subnet
// so answers compare equal when nothing changed.
func nodePeers(nodes []*structs.Node, self string) []*structs.NodePeer {
	out := []*structs.NodePeer{}
	for _, n := range nodes {
		if n.ID == self || n.Status != structs.NodeStatusReady || (n.NetworkSubnet == "" && n.NetworkSubnet6 == "") {
			continue
		}
		out = append(out, &structs.NodePeer{
			NodeID: n.ID, Name: n.Name, Address: nodeAddress(n),
			Subnet: n.NetworkSubnet, Subnet6: n.NetworkSubnet6, Status: n.Status,
		})
	}
	slices.SortFunc(out, func(a, b *structs.NodePeer) int {
		if c := strings.Compare(a.Subnet, b.Subnet); c != 0 {
			return c
		}
		return strings.Compare(a.NodeID, b.NodeID)
	})
	return out
}

// nodeAddress is the address other nodes reach n on: its fingerprinted
// address, else the host of its HTTP address.
func nodeAddress(n *structs.Node) string {
	if a := n.Attributes[structs.NodeAddressAttribute]; a != "" {
		return a
	}
	if host, _, err := net.SplitHostPort(n.HTTPAddr); err == nil {
		return host
	}
	return n.HTTPAddr
}
