// Package netlab builds small multi-node networks on one Linux machine for
// tests: every simulated node is its own network namespace with a veth to a
// shared lab bridge, and the lab itself (bridge and router) lives in a
// dedicated namespace, so nothing touches the host's interfaces, routes or
// nftables. It needs root; without root tests skip (and fail when CI=true).
//
// Addressing: the lab bridge "lab0" is 10.99.0.1/24 in the lab namespace,
// node n gets 10.99.0.(n+1)/24 with a default route via 10.99.0.1; outside
// node n also gets fd99::(n+1)/64 (Addr6) with a default IPv6 route via
// fd99::1, the lab bridge's IPv6 address (both without DAD, so they are
// usable at once); outside
// namespace k (standing in for the internet) is 198.51.(100+k).2/24 on a
// point-to-point veth whose lab side is 198.51.(100+k).1. The lab namespace
// forwards between all of them. Namespaces are bind mounts in a temporary
// directory; Close (run automatically by t.Cleanup) removes everything.
package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ExecTimeout bounds every Exec without a deadline of its own.
const ExecTimeout = 30 * time.Second

// The lab's IPv6 segment (nodes only).
var (
	labPrefix6  = netip.MustParsePrefix("fd99::/64")
	labGateway6 = netip.MustParseAddr("fd99::1")
)

// Lab is one lab network.
type Lab struct {
	t       testing.TB
	name    string
	dir     string
	NSPath  string // the lab (bridge and router) namespace
	mu      sync.Mutex
	nodes   []*Node
	outside []*Node
	closed  bool
}

// Node is a namespace attached to the lab (a node or an outside host).
type Node struct {
	Name   string
	NSPath string
	// Addr is the node's address in the lab; Prefix its subnet.
	Addr    netip.Addr
	Prefix  netip.Prefix
	Gateway netip.Addr
	// Addr6, Prefix6 and Gateway6 are the IPv6 equivalents (nodes only;
	// invalid for outside namespaces).
	Addr6    netip.Addr
	Prefix6  netip.Prefix
	Gateway6 netip.Addr

	lab     *Lab
	labSide string // the veth end in the lab namespace
}

// RequireRoot skips the test without root, or fails it when CI=true.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("netlab: root required (CI=true)")
	}
	t.Skip("netlab: root required")
}

// New creates a lab namespace with the lab bridge. name labels the lab's
// namespaces (for debugging); it need not be unique.
func New(t testing.TB, name string) *Lab {
	t.Helper()
	RequireRoot(t)
	dir, err := os.MkdirTemp("", "netlab-"+name+"-")
	if err != nil {
		t.Fatalf("netlab: temp dir: %v", err)
	}
	l := &Lab{t: t, name: name, dir: dir, NSPath: filepath.Join(dir, "lab")}
	t.Cleanup(l.Close)
	if err := createNamedNS(l.NSPath); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	err = withHandle(l.NSPath, func(h *netlink.Handle) error {
		if err := linkUp(h, "lo"); err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "lab0"}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create lab bridge: %w", err)
		}
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix("10.99.0.1/24"))}); err != nil {
			return fmt.Errorf("address lab bridge: %w", err)
		}
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(labGateway6, labPrefix6.Bits())), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address lab bridge (IPv6): %w", err)
		}
		return linkUp(h, "lab0")
	})
	if err == nil {
		err = InNamespace(l.NSPath, func() error {
			if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
				return err
			}
			return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644)
		})
	}
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	return l
}

// AddNode adds a node namespace on the lab bridge.
func (l *Lab) AddNode(name string) *Node {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.nodes) + 1
	if n > 250 {
		l.t.Fatalf("netlab: too many nodes")
	}
	node := &Node{
		Name:    name,
		NSPath:  filepath.Join(l.dir, fmt.Sprintf("node%d", n)),
		Addr:    netip.AddrFrom4([4]byte{10, 99, 0, byte(n + 1)}),
		Prefix:  netip.MustParsePrefix("10.99.0.0/24"),
		Gateway: netip.MustParseAddr("10.99.0.1"),

		Addr6:    netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x99, 15: byte(n + 1)}),
		Prefix6:  labPrefix6,
		Gateway6: labGateway6,
	}
	node.lab, node.labSide = l, fmt.Sprintf("n%d", n)
	if err := l.attach(node, node.labSide, "lab0", netip.Addr{}); err != nil {
		l.t.Fatalf("netlab: add node %s: %v", name, err)
	}
	l.nodes = append(l.nodes, node)
	return node
}

// AddOutside adds a namespace standing in for the internet: an address
// outside any cluster CIDR, reachable from the nodes through the lab router.
func (l *Lab) AddOutside(name string) *Node {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := len(l.outside)
	if k > 100 {
		l.t.Fatalf("netlab: too many outside namespaces")
	}
	node := &Node{
		Name:    name,
		NSPath:  filepath.Join(l.dir, fmt.Sprintf("out%d", k)),
		Addr:    netip.AddrFrom4([4]byte{198, 51, byte(100 + k), 2}),
		Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(100 + k), 0}), 24),
		Gateway: netip.AddrFrom4([4]byte{198, 51, byte(100 + k), 1}),
	}
	node.lab, node.labSide = l, fmt.Sprintf("o%d", k)
	if err := l.attach(node, node.labSide, "", node.Gateway); err != nil {
		l.t.Fatalf("netlab: add outside %s: %v", name, err)
	}
	l.outside = append(l.outside, node)
	return node
}

// attach creates node's namespace and a veth whose lab end is on bridge
// (or, with bridge "", carries labAddr itself).
func (l *Lab) attach(node *Node, labSide, bridge string, labAddr netip.Addr) error {
	if err := createNamedNS(node.NSPath); err != nil {
		return err
	}
	err := withHandle(l.NSPath, func(h *netlink.Handle) error {
		nsFd, err := os.Open(node.NSPath)
		if err != nil {
			return fmt.Errorf("open node netns: %w", err)
		}
		defer nsFd.Close()
		attrs := netlink.LinkAttrs{Name: labSide}
		if bridge != "" {
			br, err := h.LinkByName(bridge)
			if err != nil {
				return fmt.Errorf("look up %s: %w", bridge, err)
			}
			attrs.MasterIndex = br.Attrs().Index
		}
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(nsFd.Fd()))}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s: %w", labSide, err)
		}
		if labAddr.IsValid() {
			link, err := h.LinkByName(labSide)
			if err != nil {
				return fmt.Errorf("look up %s: %w", labSide, err)
			}
			if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(labAddr, node.Prefix.Bits()))}); err != nil {
				return fmt.Errorf("address %s: %w", labSide, err)
			}
		}
		return linkUp(h, labSide)
	})
	if err != nil {
		return err
	}
	return withHandle(node.NSPath, func(h *netlink.Handle) error {
		if err := linkUp(h, "lo"); err != nil {
			return err
		}
		eth, err := h.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("look up eth0: %w", err)
		}
		if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(node.Addr, node.Prefix.Bits()))}); err != nil {
			return fmt.Errorf("address eth0: %w", err)
		}
		if node.Addr6.IsValid() {
			if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(node.Addr6, node.Prefix6.Bits())), Flags: unix.IFA_F_NODAD}); err != nil {
				return fmt.Errorf("address eth0 (IPv6): %w", err)
			}
		}
		if err := h.LinkSetUp(eth); err != nil {
			return fmt.Errorf("eth0 up: %w", err)
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: node.Gateway.AsSlice()}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
		if node.Addr6.IsValid() {
			if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: node.Gateway6.AsSlice()}); err != nil {
				return fmt.Errorf("default route (IPv6): %w", err)
			}
		}
		return nil
	})
}

// Nodes returns the lab's nodes in the order they were added.
func (l *Lab) Nodes() []*Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Node(nil), l.nodes...)
}

// Close removes every namespace of the lab (and so every veth). It is
// idempotent and registered with t.Cleanup by New.
func (l *Lab) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	var errs []error
	for _, n := range append(l.outside, l.nodes...) {
		errs = append(errs, removeNamedNS(n.NSPath))
	}
	errs = append(errs, removeNamedNS(l.NSPath))
	errs = append(errs, os.RemoveAll(l.dir))
	if err := errors.Join(errs...); err != nil {
		l.t.Errorf("netlab: close: %v", err)
	}
}

// Disconnect cuts the node off the lab (its lab-side link goes down), for
// partition tests; Reconnect undoes it.
func (n *Node) Disconnect() error { return n.setLink(false) }

// Reconnect brings a disconnected node back.
func (n *Node) Reconnect() error { return n.setLink(true) }

func (n *Node) setLink(up bool) error {
	return withHandle(n.lab.NSPath, func(h *netlink.Handle) error {
		l, err := h.LinkByName(n.labSide)
		if err != nil {
			return fmt.Errorf("netlab: look up %s: %w", n.labSide, err)
		}
		if up {
			err = h.LinkSetUp(l)
		} else {
			err = h.LinkSetDown(l)
		}
		if err != nil {
			return fmt.Errorf("netlab: set %s up=%t: %w", n.Name, up, err)
		}
		return nil
	})
}

// Exec runs a command inside the node's namespace (nsenter --net) and
// returns its combined output. Without a deadline on ctx it is bounded by
// ExecTimeout.
func (n *Node) Exec(ctx context.Context, args ...string) ([]byte, error) {
	return ExecIn(ctx, n.NSPath, args...)
}

// ExecIn runs a command inside the network namespace at nsPath.
func ExecIn(ctx context.Context, nsPath string, args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, errors.New("netlab: exec: no command")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ExecTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + nsPath, "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netlab: exec %v in %s: %w: %s", args, nsPath, err, out)
	}
	return out, nil
}
