package nft

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names in berth's nftables table. The table is owned entirely by berth:
// SetConfig rewrites its chains atomically and leaves the port map alone.
const (
	tableName     = "berth"
	portMapName   = "ports"
	portIPMapName = "ports_ip"
)

// Layout of `table inet berth`:
//
//	map ports    { type inet_proto . inet_service : ipv4_addr . inet_service }
//	map ports_ip { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//	    one element per mapping (ports_ip: mappings restricted to a HostIP),
//	    commented with the allocation ID
//	chain prerouting  (nat, prerouting, -100): meta nfproto ipv4 fib daddr type local
//	                                           dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
//	                                           (the same without ip daddr, map @ports)
//	chain output      (nat, output, -100):     the same, for locally originated traffic
//	chain postrouting (nat, postrouting, 100): masquerade ClusterCIDR → outside,
//	                                           127.0.0.0/8 → bridge, hairpin DNAT on the bridge
//	chain forward     (filter, forward, 0):    accept to/from the bridge
//
// With IPv6 (Config.NodeSubnet6) the maps ports6/ports6_ip and the
// matching `meta nfproto ipv6` DNAT and masquerade rules are added; see
// ipv6.go.
//
// A mapping is one map element: adding or removing it does not touch rules.
var berthTable = &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName}

func portMap() *nftables.Set {
	return &nftables.Set{
		Table:         berthTable,
		Name:          portMapName,
		IsMap:         true,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		DataType:      nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
	}
}

func portIPMap() *nftables.Set {
	return &nftables.Set{
		Table:         berthTable,
		Name:          portIPMapName,
		IsMap:         true,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType:      nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
	}
}

// portKey identifies a mapping on the node: protocol, host port and, for
// mappings restricted to one node address, that address.
type portKey struct {
	proto uint8 // unix.IPPROTO_TCP / unix.IPPROTO_UDP
	port  uint16
	ip    netip.Addr // invalid: every local address
	v6    bool       // an element of the IPv6 maps (ip, if valid, is IPv6)
}

func (k portKey) bytes() []byte {
	b := []byte{k.proto, 0, 0, 0, byte(k.port >> 8), byte(k.port), 0, 0}
	if k.ip.IsValid() {
		b = append(k.ip.AsSlice(), b...)
	}
	return b
}

func (k portKey) set() *nftables.Set {
	switch {
	case k.v6 && k.ip.IsValid():
		return portIPMap6()
	case k.v6:
		return portMap6()
	case k.ip.IsValid():
		return portIPMap()
	}
	return portMap()
}

// portKeyFrom decodes an element key of an IPv4 (v6 false) or IPv6 map.
func portKeyFrom(b []byte, v6 bool) (portKey, bool) {
	var ip netip.Addr
	switch {
	case !v6 && len(b) == 12:
		ip, b = netip.AddrFrom4([4]byte(b[:4])), b[4:]
	case v6 && len(b) == 24:
		ip, b = netip.AddrFrom16([16]byte(b[:16])), b[16:]
	}
	if len(b) != 8 {
		return portKey{}, false
	}
	return portKey{proto: b[0], port: uint16(b[4])<<8 | uint16(b[5]), ip: ip, v6: v6}, true
}

// portTarget is a map element's value: address . port (padded to 32 bits).
func portTarget(ip netip.Addr, port uint16) []byte {
	return append(ip.AsSlice(), byte(port>>8), byte(port), 0, 0)
}

func (p *Plugin) nftConn() (*nftables.Conn, error) {
	if p.nsPath == "" {
		return nftables.New()
	}
	return nftables.New(nftables.WithNetNSFd(int(p.nodeNS)))
}

// tableConfig is what the node-wide rules depend on.
type tableConfig struct {
	bridge  string
	cluster netip.Prefix
	subnet  netip.Prefix
	// cluster6 and subnet6 are invalid without IPv6.
	cluster6 netip.Prefix
	subnet6  netip.Prefix
}

func hookChain(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: berthTable, Type: typ, Hooknum: hook, Priority: prio}
}

// ensureTable creates the table, chains and map if missing and rewrites the
// chains' rules in one atomic batch; map elements are kept.
func (p *Plugin) ensureTable(tc tableConfig) error {
	c, err := p.nftConn()
	if err != nil {
		return fmt.Errorf("nftables conn: %w", err)
	}
	c.AddTable(berthTable)
	sets := []*nftables.Set{portMap(), portIPMap()}
	dual := tc.subnet6.IsValid()
	if dual {
		sets = append(sets, portMap6(), portIPMap6())
	}
	for _, set := range sets {
		if err := c.AddSet(set, nil); err != nil {
			return fmt.Errorf("add map %s: %w", set.Name, err)
		}
	}
	accept := nftables.ChainPolicyAccept
	pre := c.AddChain(hookChain("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest))
	out := c.AddChain(hookChain("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest))
	post := c.AddChain(hookChain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource))
	fwdChain := hookChain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	fwdChain.Policy = &accept
	fwd := c.AddChain(fwdChain)
	for _, ch := range []*nftables.Chain{pre, out, post, fwd} {
		c.FlushChain(ch)
	}
	for _, ch := range []*nftables.Chain{pre, out} {
		c.AddRule(&nftables.Rule{Table: berthTable, Chain: ch, Exprs: dnatExprs(true)})
		c.AddRule(&nftables.Rule{Table: berthTable, Chain: ch, Exprs: dnatExprs(false)})
		if dual {
			c.AddRule(&nftables.Rule{Table: berthTable, Chain: ch, Exprs: dnat6Exprs(true)})
			c.AddRule(&nftables.Rule{Table: berthTable, Chain: ch, Exprs: dnat6Exprs(false)})
		}
	}
	post6 := [][]expr.Any(nil)
	if dual {
		post6 = postrouting6Exprs(tc)
	}
	for _, ex := range append(postroutingExprs(tc), post6...) {
		c.AddRule(&nftables.Rule{Table: berthTable, Chain: post, Exprs: ex})
	}
	c.AddRule(&nftables.Rule{Table: berthTable, Chain: fwd, Exprs: append(ifname(expr.MetaKeyIIFNAME, tc.bridge), accept1())})
	c.AddRule(&nftables.Rule{Table: berthTable, Chain: fwd, Exprs: append(ifname(expr.MetaKeyOIFNAME, tc.bridge), accept1())})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("program table inet %s: %w", tableName, err)
	}
	return nil
}

func accept1() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

func ipv4Only() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// dnatExprs: meta nfproto ipv4 fib daddr type local
// dnat ip to [ip daddr .] meta l4proto . th dport map @ports[_ip]
//
// The key is concatenated in 32-bit registers starting at reg 1 (= reg32
// 8); the looked-up address lands in reg 1 and the port in reg32 9.
func dnatExprs(byIP bool) []expr.Any {
	ex := ipv4Only()
	ex = append(ex,
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	)
	reg, name := uint32(1), portMapName
	if byIP {
		ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4})
		reg, name = 9, portIPMapName
	}
	return append(ex,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Payload{DestRegister: reg32Next(reg), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: name},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9, Specified: true},
	)
}

// reg32Next is the 32-bit register after reg (reg 1 starts at reg32 8).
func reg32Next(reg uint32) uint32 {
	if reg == 1 {
		return 9
	}
	return reg + 1
}

// prefixMatch compares ip saddr (offset 12) or daddr (16), or ip6 saddr
// (8) or daddr (24), with a prefix of the matching family.
func prefixMatch(offset uint32, pfx netip.Prefix, op expr.CmpOp) []expr.Any {
	n := uint32(pfx.Addr().BitLen() / 8)
	mask := make([]byte, n)
	bits := pfx.Bits()
	for i := range mask {
		switch {
		case bits >= 8:
			mask[i] = 0xff
		case bits > 0:
			mask[i] = byte(0xff << (8 - bits))
		}
		bits -= 8
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: op, Register: 1, Data: pfx.Masked().Addr().AsSlice()},
	}
}

func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func postroutingExprs(tc tableConfig) [][]expr.Any {
	var rules [][]expr.Any
	// Egress: allocations to anything outside the cluster CIDR.
	r := ipv4Only()
	r = append(r, prefixMatch(12, tc.cluster, expr.CmpOpEq)...)
	r = append(r, prefixMatch(16, tc.cluster, expr.CmpOpNeq)...)
	rules = append(rules, append(r, &expr.Masq{}))
	// Localhost DNAT: 127.0.0.1 cannot be a source on the bridge.
	r = ipv4Only()
	r = append(r, prefixMatch(12, netip.MustParsePrefix("127.0.0.0/8"), expr.CmpOpEq)...)
	r = append(r, ifname(expr.MetaKeyOIFNAME, tc.bridge)...)
	rules = append(rules, append(r, &expr.Masq{}))
	// Hairpin: an allocation reaching a mapped port of the node that
	// lands on the same bridge must see the reply come back through us.
	r = ipv4Only()
	r = append(r, ifname(expr.MetaKeyOIFNAME, tc.bridge)...)
	r = append(r, prefixMatch(12, tc.subnet, expr.CmpOpEq)...)
	r = append(r, ctDNAT()...)
	rules = append(rules, append(r, &expr.Masq{}))
	return rules
}

// listPorts returns every element of the port maps: key → alloc ID.
func (p *Plugin) listPorts() (map[portKey]string, error) {
	c, err := p.nftConn()
	if err != nil {
		return nil, fmt.Errorf("nftables conn: %w", err)
	}
	out := map[portKey]string{}
	for _, name := range []string{portMapName, portIPMapName, portMap6Name, portIPMap6Name} {
		v6 := name == portMap6Name || name == portIPMap6Name
		set, err := c.GetSetByName(berthTable, name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, fmt.Errorf("get map %s: %w", name, err)
		}
		elems, err := c.GetSetElements(set)
		if err != nil {
			return nil, fmt.Errorf("list map %s: %w", name, err)
		}
		for _, e := range elems {
			if k, ok := portKeyFrom(e.Key, v6); ok {
				out[k] = e.Comment
			}
		}
	}
	return out, nil
}

// portElem is one map element to add or delete.
type portElem struct {
	key    portKey
	target []byte
}

// changePorts adds or deletes map elements in one batch.
func (p *Plugin) changePorts(allocID string, add bool, elems []portElem) error {
	if len(elems) == 0 {
		return nil
	}
	c, err := p.nftConn()
	if err != nil {
		return fmt.Errorf("nftables conn: %w", err)
	}
	bySet := map[string][]nftables.SetElement{}
	sets := map[string]*nftables.Set{}
	for _, e := range elems {
		set := e.key.set()
		sets[set.Name] = set
		bySet[set.Name] = append(bySet[set.Name], nftables.SetElement{Key: e.key.bytes(), Val: e.target, Comment: allocID})
	}
	for name, vals := range bySet {
		if add {
			err = c.SetAddElements(sets[name], vals)
		} else {
			err = c.SetDeleteElements(sets[name], vals)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = c.Flush()
	}
	if err != nil {
		return fmt.Errorf("update port map (add=%t): %w", add, err)
	}
	return nil
}

// deleteTable removes berth's table, ignoring a missing one.
func (p *Plugin) deleteTable() error {
	c, err := p.nftConn()
	if err != nil {
		return fmt.Errorf("nftables conn: %w", err)
	}
	c.DelTable(berthTable)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete table inet %s: %w", tableName, err)
	}
	return nil
}

// countRules counts rules in berth's chains plus port map elements.
func (p *Plugin) countRules() (int, error) {
	c, err := p.nftConn()
	if err != nil {
		return 0, fmt.Errorf("nftables conn: %w", err)
	}
	n := 0
	for _, name := range []string{"prerouting", "output", "postrouting", "forward"} {
		rules, err := c.GetRules(berthTable, &nftables.Chain{Name: name, Table: berthTable})
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return 0, fmt.Errorf("list rules of %s: %w", name, err)
		}
		n += len(rules)
	}
	ports, err := p.listPorts()
	if err != nil {
		return 0, err
	}
	return n + len(ports), nil
}
