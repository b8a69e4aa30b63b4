package lab

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// partitionTable is the nftables table (family ip) that Partition
// installs in a node's own namespace; Heal deletes it, which undoes a
// partition exactly and touches nothing else.
const partitionTable = "berthlab"

// Partition cuts the named nodes off from every other lab node: inside
// each named node's namespace, packets from or to the others' addresses
// are dropped. The named nodes still reach one another, and the host
// (the bridge address) reaches all of them, so tests keep observing both
// sides. A node already partitioned has its rules replaced.
func (l *Lab) Partition(names ...string) error {
	group := make([]*Node, 0, len(names))
	for _, name := range names {
		n, err := l.Node(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		group = append(group, n)
	}
	if len(group) == 0 {
		return fmt.Errorf("partition: no nodes named")
	}
	var others []net.IP
	for _, n := range l.Nodes {
		if !slices.Contains(group, n) {
			others = append(others, net.ParseIP(n.Addr).To4())
		}
	}
	for _, n := range group {
		if err := installDrops(nsPath(n.Netns), others); err != nil {
			return fmt.Errorf("partition %s: %w", n.Name, err)
		}
		n.Partitioned = true
		l.logger.Info("lab node partitioned", "node", n.Name, "from", len(others))
	}
	return l.save()
}

// Heal removes every partition.
func (l *Lab) Heal() error {
	for _, n := range l.Nodes {
		if err := removeDrops(nsPath(n.Netns)); err != nil {
			return fmt.Errorf("heal %s: %w", n.Name, err)
		}
		n.Partitioned = false
	}
	l.logger.Info("lab healed")
	return l.save()
}

func nftIn(path string) (*nftables.Conn, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open netns: %w", err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("nftables: %w", err)
	}
	return c, func() { f.Close() }, nil
}

// installDrops (re)creates the partition table in a namespace.
func installDrops(path string, peers []net.IP) error {
	if err := removeDrops(path); err != nil {
		return err
	}
	c, done, err := nftIn(path)
	if err != nil {
		return err
	}
	defer done()
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: partitionTable})
	policy := nftables.ChainPolicyAccept
	in := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	out := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	for _, ip := range peers {
		c.AddRule(dropAddr(t, in, 12, ip))  // ip saddr
		c.AddRule(dropAddr(t, out, 16, ip)) // ip daddr
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install partition rules: %w", err)
	}
	return nil
}

// dropAddr is "ip saddr|daddr ADDR drop": offset 12 is the source and 16
// the destination address in the IPv4 header.
func dropAddr(t *nftables.Table, ch *nftables.Chain, offset uint32, ip net.IP) *nftables.Rule {
	return &nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}}
}

// removeDrops deletes the partition table if it exists.
func removeDrops(path string) error {
	c, done, err := nftIn(path)
	if err != nil {
		return err
	}
	defer done()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == partitionTable {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("delete partition table: %w", err)
			}
		}
	}
	return nil
}
