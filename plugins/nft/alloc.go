package nft

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/network"
)

const (
	vethPrefix  = "bv"
	aliasPrefix = "berth:"
	allocIface  = "eth0"
)

func vethName(allocID string) string {
	sum := sha256.Sum256([]byte(allocID))
	return vethPrefix + hex.EncodeToString(sum[:])[:11]
}

func (p *Plugin) nsPathOf(allocID string) string {
	return filepath.Join(p.cfg.StateDir, "netns", allocID)
}
func (p *Plugin) allocDir(allocID string) string {
	return filepath.Join(p.cfg.StateDir, "allocs", allocID)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func validAllocID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return fmt.Errorf("%w: alloc ID %q", ErrInvalidRequest, id)
	}
	return nil
}

// mappings expands the request's ports into map elements (both protocols
// when Protocol is "") and validates them, reporting every problem.
func mappings(ports []network.PortMapping) ([]portElemSpec, error) {
	var out []portElemSpec
	var errs []error
	seen := map[portKey]string{}
	for _, pm := range ports {
		if pm.HostPort < 1 || pm.HostPort > 65535 {
			errs = append(errs, fmt.Errorf("port %q: host port %d outside 1-65535", pm.Label, pm.HostPort))
			continue
		}
		to := pm.ContainerPort
		if to == 0 {
			to = pm.HostPort
		}
		if to < 1 || to > 65535 {
			errs = append(errs, fmt.Errorf("port %q: container port %d outside 1-65535", pm.Label, pm.ContainerPort))
			continue
		}
		var hostIP netip.Addr
		if pm.HostIP != "" {
			var err error
			if hostIP, err = netip.ParseAddr(pm.HostIP); err != nil || hostIP.Zone() != "" || hostIP.Is4In6() {
				errs = append(errs, fmt.Errorf("port %q: host IP %q: not an IPv4 or IPv6 address", pm.Label, pm.HostIP))
				continue
			}
		}
		var protos []uint8
		switch strings.ToLower(pm.Protocol) {
		case "":
			protos = []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP}
		case "tcp":
			protos = []uint8{unix.IPPROTO_TCP}
		case "udp":
			protos = []uint8{unix.IPPROTO_UDP}
		default:
			errs = append(errs, fmt.Errorf("port %q: protocol %q: want tcp or udp", pm.Label, pm.Protocol))
			continue
		}
		for _, proto := range protos {
			k := portKey{proto: proto, port: uint16(pm.HostPort), ip: hostIP, v6: hostIP.Is6()}
			if _, clash := portConflict(seen, k, ""); clash {
				errs = append(errs, fmt.Errorf("port %q: host port %d/%d mapped twice in the request", pm.Label, pm.HostPort, proto))
				continue
			}
			seen[k] = "this request"
			out = append(out, portElemSpec{key: k, to: uint16(to)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return out, nil
}

// portConflict reports whether k collides with a mapping of another owner
// in installed: the same protocol and port on the same address, or where
// either side covers every address.
func portConflict(installed map[portKey]string, k portKey, owner string) (string, bool) {
	if other, ok := installed[k]; ok && other != owner {
		return other, true
	}
	if k.ip.IsValid() {
		// Bound to one address: collides with a wildcard of either family.
		for _, v6 := range []bool{false, true} {
			if other, ok := installed[portKey{proto: k.proto, port: k.port, v6: v6}]; ok && other != owner {
				return other, true
			}
		}
		return "", false
	}
	// A mapping on every address collides with any address-bound one;
	// bounded by the number of installed mappings.
	for ik, other := range installed {
		if ik.proto == k.proto && ik.port == k.port && other != owner {
			return other, true
		}
	}
	return "", false
}

type portElemSpec struct {
	key portKey
	to  uint16
}

// CreateNetwork prepares an allocation's network. On error nothing of this
// call is left installed.
func (p *Plugin) CreateNetwork(ctx context.Context, req *network.AllocNetworkRequest) (*network.AllocNetwork, error) {
	if err := validAllocID(req.AllocID); err != nil {
		return nil, err
	}
	mode := req.Mode
	if mode == "" {
		mode = network.ModeBridge
	}
	if mode != network.ModeBridge && mode != network.ModeHost && mode != network.ModeNone {
		return nil, fmt.Errorf("%w: unknown network mode %q", ErrInvalidRequest, req.Mode)
	}
	specs, err := mappings(req.Ports)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return nil, ErrNotConfigured
	}
	if mode == network.ModeBridge {
		for _, s := range specs {
			if s.key.v6 && !p.subnet6.IsValid() {
				return nil, fmt.Errorf("%w: port %d: IPv6 host IP %s needs an IPv6 node subnet (NodeSubnet6)", ErrInvalidRequest, s.key.port, s.key.ip)
			}
			if owner, clash := portConflict(p.ports, s.key, req.AllocID); clash {
				return nil, fmt.Errorf("%w: %d (protocol %d) belongs to allocation %s", ErrPortTaken, s.key.port, s.key.proto, owner)
			}
		}
	}
	_, statErr := os.Stat(filepath.Join(p.allocDir(req.AllocID), "network.json"))
	existed := statErr == nil
	an, err := p.create(req, mode, specs)
	if err != nil {
		if !existed {
			if derr := p.destroyLocked(req.AllocID); derr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
			}
		}
		return nil, fmt.Errorf("create network for %s: %w", req.AllocID, err)
	}
	p.logger.InfoContext(ctx, "allocation network created", "alloc_id", req.AllocID, "mode", mode, "ip", an.IP, "ip6", an.IP6, "ports", len(specs))
	return an, nil
}

func (p *Plugin) create(req *network.AllocNetworkRequest, mode string, specs []portElemSpec) (*network.AllocNetwork, error) {
	an := &network.AllocNetwork{AllocID: req.AllocID, Mode: mode}
	dir := p.allocDir(req.AllocID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create alloc dir: %w", err)
	}
	var ip netip.Addr
	if mode != network.ModeHost {
		an.NamespacePath = p.nsPathOf(req.AllocID)
		if !isNSMount(an.NamespacePath) {
			os.Remove(an.NamespacePath) // a stale file of a crashed create
			if err := createNamedNS(an.NamespacePath); err != nil {
				return nil, err
			}
		}
		ah, err := handleAt(an.NamespacePath)
		if err != nil {
			return nil, err
		}
		defer ah.Close()
		lo, err := ah.LinkByName("lo")
		if err == nil {
			err = ah.LinkSetUp(lo)
		}
		if err != nil {
			return nil, fmt.Errorf("set lo up: %w", err)
		}
		if mode == network.ModeBridge {
			if ip, err = p.ipam.acquire(req.AllocID); err != nil {
				return nil, err
			}
			var ip6 netip.Addr
			if p.subnet6.IsValid() {
				if ip6, err = p.ipam6.acquire(req.AllocID); err != nil {
					return nil, err
				}
				an.IP6 = ip6.String()
			}
			if err := p.plumb(req.AllocID, an.NamespacePath, ah, ip, ip6); err != nil {
				return nil, err
			}
			an.IP, an.Gateway, an.Interface = ip.String(), gateway(p.subnet).String(), allocIface
			elems := make([]portElem, 0, 2*len(specs))
			for _, s := range specs {
				switch {
				case s.key.v6:
					elems = append(elems, portElem{key: s.key, target: portTarget(ip6, s.to)})
				case s.key.ip.IsValid() || !ip6.IsValid():
					elems = append(elems, portElem{key: s.key, target: portTarget(ip, s.to)})
				default: // every address: both families
					k6 := s.key
					k6.v6 = true
					elems = append(elems, portElem{key: s.key, target: portTarget(ip, s.to)}, portElem{key: k6, target: portTarget(ip6, s.to)})
				}
			}
			if err := p.changePorts(req.AllocID, true, elems); err != nil {
				return nil, err
			}
			for _, e := range elems {
				p.ports[e.key] = req.AllocID
			}
			an.Ports = req.Ports
		}
	}
	if err := p.writeEtcFiles(an, req, ip); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(an, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode alloc record: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "network.json"), b); err != nil {
		return nil, err
	}
	return an, nil
}

// plumb creates the veth pair (peer eth0 in the allocation's namespace),
// its addresses and default routes (ip6 invalid: IPv4 only). Existing
// pieces are reused.
func (p *Plugin) plumb(allocID, nsPath string, ah *netlink.Handle, ip, ip6 netip.Addr) error {
	h, err := handleAt(p.nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := h.LinkByName(p.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge: %w", err)
	}
	name := vethName(allocID)
	host, err := h.LinkByName(name)
	if err != nil {
		ns, err := openNS(nsPath)
		if err != nil {
			return fmt.Errorf("open alloc netns: %w", err)
		}
		defer ns.Close()
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: name, MTU: p.mtu, MasterIndex: br.Attrs().Index},
			PeerName:      allocIface,
			PeerNamespace: netlink.NsFd(int(ns)),
			PeerMTU:       uint32(p.mtu),
		}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s: %w", name, err)
		}
		if host, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("look up veth %s: %w", name, err)
		}
	}
	if err := h.LinkSetAlias(host, aliasPrefix+allocID); err != nil {
		return fmt.Errorf("set veth alias: %w", err)
	}
	// With br_netfilter loaded, DNAT back to the sender is bridged out of
	// the port it came in on; hairpin mode lets that frame through.
	if err := h.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set veth hairpin: %w", err)
	}
	if err := h.LinkSetUp(host); err != nil {
		return fmt.Errorf("set veth up: %w", err)
	}
	peer, err := ah.LinkByName(allocIface)
	if err != nil {
		return fmt.Errorf("look up %s in alloc netns: %w", allocIface, err)
	}
	if err := ah.AddrReplace(peer, &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(ip, p.subnet.Bits()))}); err != nil {
		return fmt.Errorf("set alloc address %s: %w", ip, err)
	}
	if err := ah.LinkSetUp(peer); err != nil {
		return fmt.Errorf("set %s up: %w", allocIface, err)
	}
	gw := gateway(p.subnet)
	if err := ah.RouteReplace(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		return fmt.Errorf("set default route via %s: %w", gw, err)
	}
	if ip6.IsValid() {
		return plumb6(ah, peer, netip.PrefixFrom(ip6, p.subnet6.Bits()))
	}
	return nil
}

// plumb6 gives eth0 its IPv6 address (no DAD: the lease makes it unique,
// and a tentative address could not be used for a second or so) and a
// default route via the bridge.
func plumb6(ah *netlink.Handle, peer netlink.Link, addr netip.Prefix) error {
	if err := ah.AddrReplace(peer, &netlink.Addr{IPNet: prefixToIPNet(addr), Flags: unix.IFA_F_NODAD}); err != nil {
		return fmt.Errorf("set alloc address %s: %w", addr, err)
	}
	gw := gateway(addr)
	if err := ah.RouteReplace(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		return fmt.Errorf("set default IPv6 route via %s: %w", gw, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// DestroyNetwork removes the allocation's map elements, veth, namespace,
// lease and files. Destroying an unknown allocation is not an error.
func (p *Plugin) DestroyNetwork(ctx context.Context, allocID string) error {
	if err := validAllocID(allocID); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return ErrNotConfigured
	}
	if err := p.destroyLocked(allocID); err != nil {
		return fmt.Errorf("destroy network for %s: %w", allocID, err)
	}
	p.logger.InfoContext(ctx, "allocation network destroyed", "alloc_id", allocID)
	return nil
}

func (p *Plugin) destroyLocked(allocID string) error {
	var errs []error
	var elems []portElem
	for k, owner := range p.ports {
		if owner == allocID {
			elems = append(elems, portElem{key: k})
		}
	}
	if err := p.changePorts(allocID, false, elems); err != nil {
		errs = append(errs, err)
	} else {
		for _, e := range elems {
			delete(p.ports, e.key)
		}
	}
	if h, err := handleAt(p.nsPath); err != nil {
		errs = append(errs, err)
	} else {
		if l, err := h.LinkByName(vethName(allocID)); err == nil {
			if err := h.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete veth: %w", err))
			}
		}
		h.Close()
	}
	if err := removeNamedNS(p.nsPathOf(allocID)); err != nil {
		errs = append(errs, err)
	}
	for _, m := range []*ipam{p.ipam, p.ipam6} {
		if err := m.release(allocID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(p.allocDir(allocID)); err != nil {
		errs = append(errs, fmt.Errorf("remove alloc dir: %w", err))
	}
	return errors.Join(errs...)
}
