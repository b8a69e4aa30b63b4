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
			if hostIP, err = netip.ParseAddr(pm.HostIP); err != nil || !hostIP.Is4() {
				errs = append(errs, fmt.Errorf("port %q: host IP %q: not an IPv4 address", pm.Label, pm.HostIP))
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
			k := portKey{proto: proto, port: uint16(pm.HostPort), ip: hostIP}
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
		other, ok := installed[portKey{proto: k.proto, port: k.port}]
		return other, ok && other != owner
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
	p.logger.InfoContext(ctx, "allocation network created", "alloc_id", req.AllocID, "mode", mode, "ip", an.IP, "ports", len(specs))
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
			if err := p.plumb(req.AllocID, an.NamespacePath, ah, ip); err != nil {
				return nil, err
			}
			an.IP, an.Gateway, an.Interface = ip.String(), gateway(p.subnet).String(), allocIface
			elems := make([]portElem, 0, len(specs))
			for _, s := range specs {
				elems = append(elems, portElem{key: s.key, target: portTarget(ip, s.to)})
			}
			if err := p.changePorts(req.AllocID, true, elems); err != nil {
				return nil, err
			}
			for _, s := range specs {
				p.ports[s.key] = req.AllocID
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
// its address and default route. Existing pieces are reused.
func (p *Plugin) plumb(allocID, nsPath string, ah *netlink.Handle, ip netip.Addr) error {
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
	if err := p.ipam.release(allocID); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(p.allocDir(allocID)); err != nil {
		errs = append(errs, fmt.Errorf("remove alloc dir: %w", err))
	}
	return errors.Join(errs...)
}
