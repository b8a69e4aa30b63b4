package server

import (
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"sync"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// Server-side IPAM: the cluster's allocation CIDR is split into equal
// subnets, one per node that runs a network plugin (see
// structs.Node.WantsNetworkSubnet). The leader's register endpoint picks a node's
// subnet (the lowest free one) and writes it into the Node of the
// register entry, so every FSM applies the same choice; the FSM refuses
// an entry whose subnet another node already holds. A node keeps its
// subnet across re-registrations, agent restarts, leader changes and
// while it is down; it is released only when the node is deleted.

// Defaults of the allocation networks.
const (
	DefaultClusterCIDR     = "10.88.0.0/16"
	DefaultNodeSubnetBits  = 24
	DefaultNodeSubnetBits6 = 64
)

// Smallest node subnets: room for a gateway and a few allocations.
const (
	maxNodeSubnetBits4 = 30
	maxNodeSubnetBits6 = 124
)

// subnetPool is one address family's cluster CIDR split into subnets of
// bits each.
type subnetPool struct {
	cidr netip.Prefix
	bits int
}

// parseSubnetPool checks and parses a cluster CIDR of the given family
// (4 or 6).
func parseSubnetPool(family int, cidr string, bits int) (*subnetPool, error) {
	name := "alloc CIDR"
	if family == 6 {
		name = "alloc CIDR6"
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", name, cidr, err)
	}
	if family == 4 && !p.Addr().Is4() {
		return nil, fmt.Errorf("%s %q is not an IPv4 CIDR", name, cidr)
	}
	if family == 6 && (!p.Addr().Is6() || p.Addr().Is4In6()) {
		return nil, fmt.Errorf("%s %q is not an IPv6 CIDR", name, cidr)
	}
	if p != p.Masked() {
		return nil, fmt.Errorf("%s %q has host bits set (did you mean %s?)", name, cidr, p.Masked())
	}
	limit := maxNodeSubnetBits4
	if family == 6 {
		limit = maxNodeSubnetBits6
	}
	if bits < p.Bits() || bits > limit {
		return nil, fmt.Errorf("node subnet size /%d does not fit %s %s: it must be between /%d and /%d", bits, name, p, p.Bits(), limit)
	}
	return &subnetPool{cidr: p, bits: bits}, nil
}

// ipamPools parses the config's allocation networks; a nil pool means
// the family has no IPAM.
func (c *Config) ipamPools() (v4, v6 *subnetPool, err error) {
	var errs []error
	if c.ClusterCIDR != "" {
		bits := c.NodeSubnetBits
		if bits == 0 {
			bits = DefaultNodeSubnetBits
		}
		if v4, err = parseSubnetPool(4, c.ClusterCIDR, bits); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ClusterCIDR6 != "" {
		bits := c.NodeSubnetBits6
		if bits == 0 {
			bits = DefaultNodeSubnetBits6
		}
		if v6, err = parseSubnetPool(6, c.ClusterCIDR6, bits); err != nil {
			errs = append(errs, err)
		}
	}
	return v4, v6, errors.Join(errs...)
}

// validateNetwork is the allocation-network part of Config.validate.
func (c *Config) validateNetwork() error {
	_, _, err := c.ipamPools()
	return err
}

// size is how many subnets the pool holds, saturating at MaxUint64.
func (p *subnetPool) size() uint64 {
	shift := p.bits - p.cidr.Bits()
	if shift >= 64 {
		return ^uint64(0)
	}
	return 1 << shift
}

// nth returns the pool's i-th subnet (i < size()).
func (p *subnetPool) nth(i uint64) netip.Prefix {
	base := p.cidr.Addr().AsSlice()
	offset := new(big.Int).Lsh(new(big.Int).SetUint64(i), uint(len(base)*8-p.bits))
	sum := new(big.Int).Add(new(big.Int).SetBytes(base), offset)
	out := make([]byte, len(base))
	sum.FillBytes(out)
	addr, _ := netip.AddrFromSlice(out)
	return netip.PrefixFrom(addr, p.bits)
}

// holds reports whether subnet is one of the pool's subnets.
func (p *subnetPool) holds(subnet netip.Prefix) bool {
	return subnet.Bits() == p.bits && subnet == subnet.Masked() &&
		subnet.Addr().Is4() == p.cidr.Addr().Is4() && p.cidr.Contains(subnet.Addr())
}

// lowestFree returns the first subnet of the pool not in taken. It looks
// at no more than len(taken)+1 subnets.
func (p *subnetPool) lowestFree(taken map[netip.Prefix]bool) (netip.Prefix, error) {
	n := p.size()
	for i := uint64(0); i < n; i++ {
		if s := p.nth(i); !taken[s] {
			return s, nil
		}
	}
	return netip.Prefix{}, &codedError{code: http.StatusConflict, msg: fmt.Sprintf(
		"no free /%d left in %s: %d nodes hold all of them", p.bits, p.cidr, len(taken))}
}

// ipamReservations are the subnets the leader has chosen for register
// entries still on their way through Raft, so that concurrent
// registrations never pick the same one. The lock is held only while
// choosing, not during the Raft apply, so registrations still batch.
type ipamReservations struct {
	mu      sync.Mutex
	pending map[netip.Prefix]string // subnet -> node ID
}

// subnetFamily is what differs between the IPv4 and IPv6 halves.
type subnetFamily struct {
	pool            *subnetPool
	name            string
	requested, have string
	out             *string
	nodeSubnet      func(*structs.Node) string
}

// assignNodeSubnets fills node.NetworkSubnet(6) for its register entry:
// the node's current subnet, the one it asks for if free, or the lowest
// free one. The returned release must be called once the entry has been
// applied (or failed).
func (s *Server) assignNodeSubnets(st *state.StateStore, node, existing *structs.Node) (release func(), err error) {
	v4, v6, err := s.config.ipamPools()
	if err != nil {
		return nil, fmt.Errorf("ipam config: %w", err)
	}
	var have4, have6 string
	if existing != nil {
		have4, have6 = existing.NetworkSubnet, existing.NetworkSubnet6
	}
	if !node.WantsNetworkSubnet() && have4 == "" && have6 == "" {
		return func() {}, nil
	}
	families := []subnetFamily{
		{pool: v4, name: "IPv4", requested: node.NetworkSubnet, have: have4, out: &node.NetworkSubnet,
			nodeSubnet: func(n *structs.Node) string { return n.NetworkSubnet }},
		{pool: v6, name: "IPv6", requested: node.NetworkSubnet6, have: have6, out: &node.NetworkSubnet6,
			nodeSubnet: func(n *structs.Node) string { return n.NetworkSubnet6 }},
	}
	r := &s.ipam
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[netip.Prefix]string)
	}
	var reserved []netip.Prefix
	unreserve := func() { // with r.mu held
		for _, p := range reserved {
			if r.pending[p] == node.ID {
				delete(r.pending, p)
			}
		}
	}
	release = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		unreserve()
	}
	for _, f := range families {
		chosen, fresh, err := s.chooseSubnet(st, node.ID, f)
		if err != nil {
			unreserve()
			return nil, err
		}
		*f.out = ""
		if chosen.IsValid() {
			*f.out = chosen.String()
			if fresh {
				r.pending[chosen] = node.ID
				reserved = append(reserved, chosen)
			}
		}
	}
	if len(reserved) > 0 {
		s.logger.Info("node subnets assigned", "node_id", node.ID, "subnet", node.NetworkSubnet, "subnet6", node.NetworkSubnet6)
	}
	return release, nil
}

// chooseSubnet picks one family's subnet for nodeID; fresh means the node
// did not hold it before. Called with s.ipam.mu held.
func (s *Server) chooseSubnet(st *state.StateStore, nodeID string, f subnetFamily) (subnet netip.Prefix, fresh bool, err error) {
	if f.pool == nil {
		if f.requested != "" && f.requested != f.have {
			return netip.Prefix{}, false, badRequest("node %s asks for %s subnet %s, but the servers have no %s alloc CIDR", nodeID, f.name, f.requested, f.name)
		}
		return netip.Prefix{}, false, nil
	}
	if f.requested != "" {
		req, err := netip.ParsePrefix(f.requested)
		if err != nil {
			return netip.Prefix{}, false, badRequest("node %s asks for %s subnet %q: %v", nodeID, f.name, f.requested, err)
		}
		if !f.pool.holds(req) {
			return netip.Prefix{}, false, badRequest("node %s asks for %s subnet %s, which is not a /%d of %s", nodeID, f.name, f.requested, f.pool.bits, f.pool.cidr)
		}
		if holder, err := s.subnetHolder(st, nodeID, req); err != nil {
			return netip.Prefix{}, false, err
		} else if holder != "" {
			return netip.Prefix{}, false, badRequest("node %s asks for %s subnet %s, which node %s holds", nodeID, f.name, req, holder)
		}
		return req, req.String() != f.have, nil
	}
	if have, err := netip.ParsePrefix(f.have); err == nil && f.pool.holds(have) {
		return have, false, nil
	} else if f.have != "" {
		s.logger.Warn("node subnet is outside the alloc CIDR: assigning another", "node_id", nodeID, "subnet", f.have, "cidr", f.pool.cidr.String())
	}
	nodes, err := st.Nodes(nil, "")
	if err != nil {
		return netip.Prefix{}, false, err
	}
	taken := make(map[netip.Prefix]bool, len(nodes)+len(s.ipam.pending))
	for _, n := range nodes {
		if n.ID == nodeID {
			continue
		}
		if p, err := netip.ParsePrefix(f.nodeSubnet(n)); err == nil {
			taken[p] = true
		}
	}
	for p, holder := range s.ipam.pending {
		if holder != nodeID {
			taken[p] = true
		}
	}
	chosen, err := f.pool.lowestFree(taken)
	return chosen, true, err
}

// subnetHolder names another node holding subnet, in the state or on its
// way there; "" if none. Called with s.ipam.mu held.
func (s *Server) subnetHolder(st *state.StateStore, nodeID string, subnet netip.Prefix) (string, error) {
	if holder, ok := s.ipam.pending[subnet]; ok && holder != nodeID {
		return holder, nil
	}
	nodes, err := st.NodesBySubnet(nil, subnet.String())
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ID != nodeID {
			return n.ID, nil
		}
	}
	return "", nil
}

// networkConfig is the allocation-network part of a register or
// heartbeat answer.
func (s *Server) networkConfig(resp *structs.NodeHeartbeatResponse, node *structs.Node) *structs.NodeHeartbeatResponse {
	resp.ClusterCIDR, resp.ClusterCIDR6 = s.config.ClusterCIDR, s.config.ClusterCIDR6
	if node != nil {
		resp.NetworkSubnet, resp.NetworkSubnet6 = node.NetworkSubnet, node.NetworkSubnet6
	}
	return resp
}
