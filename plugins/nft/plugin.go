// Package nft is berth's built-in network plugin. It implements
// network.Network by programming the kernel directly: links, addresses,
// routes and namespaces through netlink (vishvananda/netlink), NAT and port
// mappings through nftables (google/nftables) in the table `inet berth`,
// which berth owns entirely.
//
// Layout on a node (see table.go for the nftables side):
//
//	bridge  <Config.Bridge> (default berth0), gateway = NodeSubnet's first address
//	        (and NodeSubnet6's first address when dual-stack, see ipv6.go)
//	veth    bv<11 hex of sha256(alloc ID)> on the bridge, alias "berth:<alloc ID>";
//	        its peer is eth0 inside the allocation's namespace
//	vxlan   berthvx (Routing=vxlan only), see peers.go
//	routes  to peer subnets, protocol 98 (routeProtocol) so they can be listed
//	StateDir/netns/<alloc ID>            bind-mounted namespace (NamespacePath)
//	StateDir/leases/<ip>                 address lease, content = alloc ID
//	StateDir/leases6/<ip>                IPv6 address lease (dual-stack)
//	StateDir/allocs/<alloc ID>/network.json, hosts, resolv.conf
//
// Everything is recomputed from the kernel and StateDir, so a new instance
// with the same StateDir (a restarted plugin) picks up where the old one
// stopped.
package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/network"
)

// Defaults.
const (
	DefaultBridge    = "berth0"
	DefaultVXLANID   = 42
	DefaultVXLANPort = 4789
	vxlanOverhead    = 50
)

// ErrInvalidConfig, ErrInvalidRequest, ErrPortTaken and ErrNotConfigured
// wrap the network contract's errors, so their class survives the gRPC trip;
// match them with errors.Is.
var (
	ErrInvalidConfig  = fmt.Errorf("invalid network config: %w", network.ErrInvalidRequest)
	ErrInvalidRequest = network.ErrInvalidRequest
	ErrPortTaken      = fmt.Errorf("host port already mapped: %w", network.ErrPortConflict)
	ErrNotConfigured  = fmt.Errorf("SetConfig first: %w", network.ErrNotConfigured)
)

// Plugin is the nft network plugin. All methods serialize on one mutex.
type Plugin struct {
	logger *slog.Logger
	nsPath string         // node namespace; "" = the process's
	nodeNS netns.NsHandle // open handle of nsPath (when set)

	mu      sync.Mutex
	cfg     *network.Config
	cluster netip.Prefix
	subnet  netip.Prefix
	mtu     int
	ipam    *ipam
	// cluster6 and subnet6 are the IPv6 half (invalid: IPv4 only).
	cluster6 netip.Prefix
	subnet6  netip.Prefix
	ipam6    *ipam
	ports    map[portKey]string // installed mappings → alloc ID
}

var _ network.Network = (*Plugin)(nil)

// New returns the plugin operating in the process's network namespace.
func New(logger *slog.Logger) network.Network {
	p, err := NewInNamespace(logger, "")
	if err != nil {
		panic(err) // cannot happen: no namespace to open
	}
	return p
}

// NewInNamespace returns a plugin that programs the network namespace at
// nsPath ("" = the process's) without ever moving the process into it; tests
// and the multi-node lab run one instance per simulated node this way.
func NewInNamespace(logger *slog.Logger, nsPath string) (*Plugin, error) {
	if logger == nil {
		logger = slog.Default()
	}
	p := &Plugin{logger: logger.With("component", "nft"), nsPath: nsPath, nodeNS: -1}
	if nsPath != "" {
		h, err := netns.GetFromPath(nsPath)
		if err != nil {
			return nil, fmt.Errorf("open node netns %s: %w", nsPath, err)
		}
		p.nodeNS = h
	}
	return p, nil
}

// Close releases the namespace handle (not part of network.Network).
func (p *Plugin) Close() error {
	if p.nodeNS >= 0 {
		return p.nodeNS.Close()
	}
	return nil
}

func parseConfig(cfg *network.Config) (cluster, subnet netip.Prefix, err error) {
	var errs []error
	if cfg.StateDir == "" {
		errs = append(errs, errors.New("StateDir is required"))
	}
	cluster, err = netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil || !cluster.Addr().Is4() {
		errs = append(errs, fmt.Errorf("ClusterCIDR %q: not an IPv4 CIDR", cfg.ClusterCIDR))
	}
	subnet, err = netip.ParsePrefix(cfg.NodeSubnet)
	switch {
	case err != nil || !subnet.Addr().Is4():
		errs = append(errs, fmt.Errorf("NodeSubnet %q: not an IPv4 CIDR", cfg.NodeSubnet))
	case subnet.Bits() > 30:
		errs = append(errs, fmt.Errorf("NodeSubnet %q: too small (need /30 or larger)", cfg.NodeSubnet))
	case cluster.IsValid() && (subnet.Bits() < cluster.Bits() || !cluster.Contains(subnet.Addr())):
		errs = append(errs, fmt.Errorf("NodeSubnet %s is not inside ClusterCIDR %s", subnet, cluster))
	}
	switch cfg.Routing {
	case "", network.RoutingHostGW:
	case network.RoutingVXLAN:
		if _, err := netip.ParseAddr(cfg.NodeAddress); err != nil {
			errs = append(errs, fmt.Errorf("NodeAddress %q: required for vxlan: %w", cfg.NodeAddress, err))
		}
	default:
		errs = append(errs, fmt.Errorf("Routing %q: want %q or %q", cfg.Routing, network.RoutingHostGW, network.RoutingVXLAN))
	}
	if cfg.NodeAddress != "" {
		if _, err := netip.ParseAddr(cfg.NodeAddress); err != nil {
			errs = append(errs, fmt.Errorf("NodeAddress %q: %w", cfg.NodeAddress, err))
		}
	}
	if len(cfg.Bridge) > 15 {
		errs = append(errs, fmt.Errorf("Bridge %q: longer than 15 characters", cfg.Bridge))
	}
	if cfg.MTU < 0 || (cfg.MTU != 0 && cfg.MTU < 576) || cfg.MTU > 65535 {
		errs = append(errs, fmt.Errorf("MTU %d: out of range", cfg.MTU))
	}
	if err := errors.Join(errs...); err != nil {
		return cluster, subnet, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cluster.Masked(), subnet.Masked(), nil
}

// SetConfig validates cfg and creates (or updates) the bridge, sysctls,
// the nftables table and, for vxlan, the overlay device.
func (p *Plugin) SetConfig(ctx context.Context, cfg *network.Config) error {
	cluster, subnet, err := parseConfig(cfg)
	cluster6, subnet6, err6 := parseConfig6(cfg)
	if err = errors.Join(err, err6); err != nil {
		return err
	}
	if subnet6.IsValid() && subnet6.Overlaps(netip.MustParsePrefix("fe80::/10")) {
		return fmt.Errorf("%w: NodeSubnet6 %s is link-local", ErrInvalidConfig, subnet6)
	}
	c := *cfg
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if c.VXLANID == 0 {
		c.VXLANID = DefaultVXLANID
	}
	if c.VXLANPort == 0 {
		c.VXLANPort = DefaultVXLANPort
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	h, err := handleAt(p.nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	mtu := c.MTU
	if mtu == 0 {
		mtu = defaultRouteMTU(h)
		if c.Routing == network.RoutingVXLAN {
			mtu -= vxlanOverhead
		}
	}
	gws := []netip.Prefix{netip.PrefixFrom(gateway(subnet), subnet.Bits())}
	sysctls := map[string]string{
		"net/ipv4/ip_forward": "1",
		// DNAT of 127.0.0.1 towards the bridge (then masqueraded).
		"net/ipv4/conf/" + c.Bridge + "/route_localnet": "1",
	}
	if subnet6.IsValid() {
		gws = append(gws, netip.PrefixFrom(gateway(subnet6), subnet6.Bits()))
		sysctls["net/ipv6/conf/all/forwarding"] = "1"
	}
	if err := ensureBridge(h, c.Bridge, gws, mtu); err != nil {
		return err
	}
	for name, val := range sysctls {
		if err := writeSysctl(p.nsPath, name, val); err != nil {
			return err
		}
	}
	if err := p.ensureTable(tableConfig{bridge: c.Bridge, cluster: cluster, subnet: subnet, cluster6: cluster6, subnet6: subnet6}); err != nil {
		return err
	}
	ports, err := p.listPorts()
	if err != nil {
		return err
	}
	if c.Routing == network.RoutingVXLAN {
		if err := ensureVXLAN(h, &c, mtu); err != nil {
			return err
		}
	}
	p.cfg, p.cluster, p.subnet, p.mtu, p.ports = &c, cluster, subnet, mtu, ports
	p.ipam = newIPAM(c.StateDir, "leases", subnet)
	// ipam6 exists even without IPv6, so leases of an earlier dual-stack
	// configuration are still found and released.
	p.cluster6, p.subnet6, p.ipam6 = cluster6, subnet6, newIPAM(c.StateDir, leases6Dir, subnet6)
	if !subnet6.IsValid() && c.ClusterCIDR6 != "" {
		p.logger.WarnContext(ctx, "ClusterCIDR6 without NodeSubnet6: allocations get IPv4 only")
	}
	p.logger.InfoContext(ctx, "network configured", "bridge", c.Bridge, "subnet", subnet.String(), "subnet6", c.NodeSubnet6, "routing", c.Routing, "mtu", mtu, "port_mappings", len(ports))
	return nil
}

func defaultRouteMTU(h *netlink.Handle) int {
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
	if err == nil {
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP != nil && !r.Dst.IP.IsUnspecified() {
				continue
			}
			if l, err := h.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU > 0 {
				return l.Attrs().MTU
			}
		}
	}
	return 1500
}

// ensureBridge creates the bridge if missing and sets addresses, MTU, up.
// IPv6 addresses skip duplicate address detection: the subnet is ours,
// and a tentative gateway would delay allocations' first packets.
func ensureBridge(h *netlink.Handle, name string, gws []netip.Prefix, mtu int) error {
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("%w: %s exists and is a %s, not a bridge", ErrInvalidConfig, name, link.Type())
	}
	if link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set bridge MTU: %w", err)
		}
	}
	for _, gw := range gws {
		addr := &netlink.Addr{IPNet: prefixToIPNet(gw)}
		if gw.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("set bridge address %s: %w", gw, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set bridge up: %w", err)
	}
	return nil
}
