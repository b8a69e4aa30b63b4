package nft

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/network"
)

// Dual stack. With Config.NodeSubnet6 set, every bridge allocation also
// gets an IPv6 address from it (leases in StateDir/leases6, same scheme as
// IPv4), the bridge carries the subnet's first address, and table inet
// berth grows a second pair of port maps: an nftables map element has one
// address type, so IPv6 targets cannot share the IPv4 maps.
//
//	map ports6    { type inet_proto . inet_service : ipv6_addr . inet_service }
//	map ports6_ip { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service }
//
// A mapping without HostIP gets an element in ports and ports6; a HostIP
// mapping only in the map of its address's family. Egress out of
// ClusterCIDR6 is masqueraded and hairpin DNAT handled as for IPv4.
//
// Not supported:
//   - DNAT from ::1: the kernel has no route_localnet for IPv6 and drops
//     packets with a loopback source leaving a real interface (even when
//     masqueraded), so localhost port mappings are IPv4 only.
//   - Cross-node IPv6 with host-gw routing: peers' addresses are IPv4 and
//     an IPv6 route with an IPv4 next hop needs nexthop objects; only vxlan
//     routes peers' Subnet6 (see SetPeers).
//   - Dropping NodeSubnet6 on reconfiguration leaves the bridge's IPv6
//     address and the (then unused) IPv6 maps until Cleanup.
const (
	portMap6Name   = "ports6"
	portIPMap6Name = "ports6_ip"
	leases6Dir     = "leases6"
)

func portMap6() *nftables.Set {
	return &nftables.Set{
		Table:         berthTable,
		Name:          portMap6Name,
		IsMap:         true,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		DataType:      nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
	}
}

func portIPMap6() *nftables.Set {
	return &nftables.Set{
		Table:         berthTable,
		Name:          portIPMap6Name,
		IsMap:         true,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType:      nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
	}
}

// parseConfig6 validates the optional IPv6 half of cfg. Both results are
// invalid prefixes when NodeSubnet6 is empty (IPv4 only).
func parseConfig6(cfg *network.Config) (cluster6, subnet6 netip.Prefix, err error) {
	if cfg.NodeSubnet6 == "" {
		return netip.Prefix{}, netip.Prefix{}, nil
	}
	var errs []error
	cluster6, err = netip.ParsePrefix(cfg.ClusterCIDR6)
	if err != nil || !cluster6.Addr().Is6() || cluster6.Addr().Is4In6() {
		errs = append(errs, fmt.Errorf("ClusterCIDR6 %q: not an IPv6 CIDR (required with NodeSubnet6)", cfg.ClusterCIDR6))
	}
	subnet6, err = netip.ParsePrefix(cfg.NodeSubnet6)
	switch {
	case err != nil || !subnet6.Addr().Is6() || subnet6.Addr().Is4In6():
		errs = append(errs, fmt.Errorf("NodeSubnet6 %q: not an IPv6 CIDR", cfg.NodeSubnet6))
	case subnet6.Bits() > 126:
		errs = append(errs, fmt.Errorf("NodeSubnet6 %q: too small (need /126 or larger)", cfg.NodeSubnet6))
	case cluster6.IsValid() && (subnet6.Bits() < cluster6.Bits() || !cluster6.Contains(subnet6.Addr())):
		errs = append(errs, fmt.Errorf("NodeSubnet6 %s is not inside ClusterCIDR6 %s", subnet6, cluster6))
	}
	if err := errors.Join(errs...); err != nil {
		return cluster6, subnet6, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cluster6.Masked(), subnet6.Masked(), nil
}

func ipv6Only() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	}
}

// dnat6Exprs: meta nfproto ipv6 fib daddr type local
// dnat ip6 to [ip6 daddr .] meta l4proto . th dport map @ports6[_ip]
//
// The 16-byte address fills reg 1 (reg32 8-11), so with byIP the protocol
// and port follow in reg32 12 and 13; the looked-up address lands in reg 1
// and its port in reg32 12.
func dnat6Exprs(byIP bool) []expr.Any {
	ex := ipv6Only()
	ex = append(ex,
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	)
	protoReg, portReg, name := uint32(1), uint32(9), portMap6Name
	if byIP {
		ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16})
		protoReg, portReg, name = 12, 13, portIPMap6Name
	}
	return append(ex,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: name},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegProtoMin: 12, Specified: true},
	)
}

// postrouting6Exprs: egress masquerade out of ClusterCIDR6 and hairpin
// DNAT on the bridge, like the IPv4 rules (ip6 saddr at offset 8, daddr 24).
func postrouting6Exprs(tc tableConfig) [][]expr.Any {
	r := ipv6Only()
	r = append(r, prefixMatch(8, tc.cluster6, expr.CmpOpEq)...)
	r = append(r, prefixMatch(24, tc.cluster6, expr.CmpOpNeq)...)
	egress := append(r, &expr.Masq{})
	r = ipv6Only()
	r = append(r, ifname(expr.MetaKeyOIFNAME, tc.bridge)...)
	r = append(r, prefixMatch(8, tc.subnet6, expr.CmpOpEq)...)
	r = append(r, ctDNAT()...)
	return [][]expr.Any{egress, append(r, &expr.Masq{})}
}

// ctDNAT matches connections whose destination was NATed.
func ctDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(0x20 /* IPS_DST_NAT */), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}
