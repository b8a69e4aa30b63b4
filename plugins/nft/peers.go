package nft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/network"
)

// vxlanDevice is the overlay device (Routing=vxlan).
//
// Overlay convention: every node's VTEP MAC is derived from its node
// address (0e:be:a:b:c:d for a.b.c.d), and a peer's subnet is routed
// "via <peer subnet's network address> dev berthvx onlink". That next hop
// gets a permanent neighbor entry with the peer's derived MAC, and the MAC
// an FDB entry pointing at the peer's node address. No control plane beyond
// the peer list is needed.
const vxlanDevice = "berthvx"

// routeProtocol marks routes berth installs, so they can be listed and
// removed without touching anyone else's.
const routeProtocol = netlink.RouteProtocol(98)

func vtepMAC(nodeAddr netip.Addr) net.HardwareAddr {
	a := nodeAddr.As4()
	return net.HardwareAddr{0x0e, 0xbe, a[0], a[1], a[2], a[3]}
}

func ensureVXLAN(h *netlink.Handle, cfg *network.Config, mtu int) error {
	local := netip.MustParseAddr(cfg.NodeAddress)
	want := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: vxlanDevice, MTU: mtu, HardwareAddr: vtepMAC(local)},
		VxlanId:   cfg.VXLANID,
		SrcAddr:   local.AsSlice(),
		Port:      cfg.VXLANPort,
	}
	if l, err := h.LinkByName(vxlanDevice); err == nil {
		v, ok := l.(*netlink.Vxlan)
		if ok && v.VxlanId == want.VxlanId && v.Port == want.Port && v.SrcAddr.Equal(want.SrcAddr) {
			if l.Attrs().MTU != mtu {
				if err := h.LinkSetMTU(l, mtu); err != nil {
					return fmt.Errorf("set vxlan MTU: %w", err)
				}
			}
			return h.LinkSetUp(l)
		}
		if err := h.LinkDel(l); err != nil {
			return fmt.Errorf("replace vxlan device: %w", err)
		}
	}
	if err := h.LinkAdd(want); err != nil {
		return fmt.Errorf("create vxlan device: %w", err)
	}
	if err := h.LinkSetUp(want); err != nil {
		return fmt.Errorf("set vxlan up: %w", err)
	}
	return nil
}

// SetPeers routes every peer's subnet (host-gw: via its address; vxlan:
// over the overlay) and removes routes of peers no longer listed.
//
// A peer's Subnet6 is routed when this node is dual-stack and Routing is
// vxlan: over berthvx to the peer's subnet-router address (its Subnet6's
// network address), whose permanent neighbor entry is the peer's VTEP MAC,
// as for IPv4. Cross-node IPv6 needs vxlan: peer addresses are IPv4, and
// Linux accepts an IPv4 next hop for an IPv6 route only through nexthop
// objects (RTM_NEWNEXTHOP), which the netlink library does not offer; so
// host-gw skips peers' Subnet6 (logged) and only same-node IPv6, port
// mappings and egress work there.
func (p *Plugin) SetPeers(ctx context.Context, peers []network.Peer) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return ErrNotConfigured
	}
	want, err := p.peerRoutes(peers)
	if err != nil {
		return err
	}
	if p.cfg.Routing != network.RoutingVXLAN {
		v4 := want[:0]
		for _, w := range want {
			if w.subnet.Addr().Is4() {
				v4 = append(v4, w)
			}
		}
		if skipped := len(want) - len(v4); skipped > 0 {
			p.logger.WarnContext(ctx, "cross-node IPv6 needs vxlan routing; peers' IPv6 subnets not routed", "skipped", skipped)
		}
		want = v4
	}
	h, err := handleAt(p.nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	var vx netlink.Link
	if p.cfg.Routing == network.RoutingVXLAN {
		if vx, err = h.LinkByName(vxlanDevice); err != nil {
			return fmt.Errorf("look up vxlan device: %w", err)
		}
	}
	keep := map[string]bool{}
	keepNeigh := map[string]bool{}
	for _, w := range want {
		r := &netlink.Route{Dst: prefixToIPNet(w.subnet), Protocol: routeProtocol}
		switch {
		case vx == nil:
			r.Gw = w.addr.AsSlice()
		default:
			hop := w.subnet.Addr()
			mac := vtepMAC(w.addr)
			fam := netlink.FAMILY_V4
			if hop.Is6() {
				fam = netlink.FAMILY_V6
			}
			r.Gw, r.LinkIndex, r.Flags = hop.AsSlice(), vx.Attrs().Index, int(netlink.FLAG_ONLINK)
			if err := h.NeighSet(&netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT, IP: hop.AsSlice(), HardwareAddr: mac}); err != nil {
				return fmt.Errorf("peer %s neighbor %s: %w", w.addr, hop, err)
			}
			if err := h.NeighSet(&netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF, IP: w.addr.AsSlice(), HardwareAddr: mac}); err != nil {
				return fmt.Errorf("peer %s fdb entry: %w", w.addr, err)
			}
			keepNeigh[hop.String()], keepNeigh[mac.String()] = true, true
		}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s: %w", w.subnet, err)
		}
		keep[w.subnet.String()] = true
	}
	if err := p.pruneRoutes(h, keep); err != nil {
		return err
	}
	if vx != nil {
		pruneNeighbors(h, vx, keepNeigh)
	}
	p.logger.InfoContext(ctx, "peers programmed", "peers", len(peers), "routes", len(want), "routing", p.cfg.Routing)
	return nil
}

// peerRoute is one peer subnet (IPv4 or IPv6) and the peer's address.
type peerRoute struct {
	subnet netip.Prefix
	addr   netip.Addr
}

// peerRoutes validates peers, reporting every problem, and returns the
// routes to install. A peer may have only an IPv4 or only an IPv6 subnet;
// IPv6 subnets are skipped when this node is IPv4 only.
func (p *Plugin) peerRoutes(peers []network.Peer) ([]peerRoute, error) {
	var want []peerRoute
	var errs []error
	for _, pr := range peers {
		addr, aerr := netip.ParseAddr(pr.Address)
		if aerr != nil || !addr.Is4() {
			errs = append(errs, fmt.Errorf("peer %s: address %q: not an IPv4 address", pr.NodeID, pr.Address))
			continue
		}
		if pr.Subnet == "" && pr.Subnet6 == "" {
			errs = append(errs, fmt.Errorf("peer %s: no subnet", pr.NodeID))
			continue
		}
		if pr.Subnet != "" {
			subnet, err := netip.ParsePrefix(pr.Subnet)
			switch {
			case err != nil || !subnet.Addr().Is4():
				errs = append(errs, fmt.Errorf("peer %s: subnet %q: not an IPv4 CIDR", pr.NodeID, pr.Subnet))
			case subnet.Masked().Overlaps(p.subnet):
				errs = append(errs, fmt.Errorf("peer %s: subnet %s overlaps this node's %s", pr.NodeID, subnet, p.subnet))
			default:
				want = append(want, peerRoute{subnet: subnet.Masked(), addr: addr})
			}
		}
		if pr.Subnet6 != "" && p.subnet6.IsValid() {
			subnet, err := netip.ParsePrefix(pr.Subnet6)
			switch {
			case err != nil || !subnet.Addr().Is6() || subnet.Addr().Is4In6():
				errs = append(errs, fmt.Errorf("peer %s: subnet6 %q: not an IPv6 CIDR", pr.NodeID, pr.Subnet6))
			case subnet.Masked().Overlaps(p.subnet6):
				errs = append(errs, fmt.Errorf("peer %s: subnet6 %s overlaps this node's %s", pr.NodeID, subnet, p.subnet6))
			default:
				want = append(want, peerRoute{subnet: subnet.Masked(), addr: addr})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return want, nil
}

// ourRoutes lists the routes berth installed.
func ourRoutes(h *netlink.Handle) ([]netlink.Route, error) {
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return rs, nil
}

func (p *Plugin) pruneRoutes(h *netlink.Handle, keep map[string]bool) error {
	rs, err := ourRoutes(h)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rs {
		if r.Dst != nil && keep[r.Dst.String()] {
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}

// pruneNeighbors drops overlay neighbor and FDB entries of departed peers.
func pruneNeighbors(h *netlink.Handle, vx netlink.Link, keep map[string]bool) {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6, unix.AF_BRIDGE} {
		ns, err := h.NeighList(vx.Attrs().Index, fam)
		if err != nil {
			continue
		}
		for _, n := range ns {
			key := n.HardwareAddr.String()
			if fam != unix.AF_BRIDGE {
				key = n.IP.String()
			}
			if n.State&netlink.NUD_PERMANENT == 0 || keep[key] {
				continue
			}
			_ = h.NeighDel(&n) // best effort: stale entries are harmless without routes
		}
	}
}
