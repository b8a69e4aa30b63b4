package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-dev/berth/internal/nsutil"
)

// netnsDir is where named network namespaces are bind-mounted (as by
// `ip netns add`), so `ip netns exec` and nsenter find the lab's too.
const netnsDir = "/var/run/netns"

// nsPath is the bind mount of a named network namespace.
func nsPath(name string) string { return filepath.Join(netnsDir, name) }

// inThread runs fn on a fresh locked OS thread whose namespace is
// restored afterwards.
func inThread(fn func() error) error { return nsutil.OnLockedThread(fn) }

// inNetns runs fn with the calling OS thread inside the namespace at path;
// processes started by fn (os/exec forks from the calling thread) are
// born in it.
func inNetns(path string, fn func() error) error { return nsutil.Run(path, fn) }

// createNetns makes a named network namespace (bind-mounted under
// /var/run/netns) with lo up. An existing one is an error.
func createNetns(name string) error {
	return inThread(func() error {
		ns, err := netns.NewNamed(name)
		if err != nil {
			return fmt.Errorf("create netns %s: %w", name, err)
		}
		defer ns.Close()
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("netns %s: find lo: %w", name, err)
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("netns %s: lo up: %w", name, err)
		}
		return nil
	})
}

// deleteNetns unmounts and removes a named namespace; a missing one is
// not an error. The namespace (and the veth end in it) goes away once no
// process is left in it.
func deleteNetns(name string) error {
	p := nsPath(name)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// netnsInode identifies a namespace: the inode of its nsfs file.
func netnsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// ensureBridge creates (or finds) the lab bridge in the host namespace
// with addr (CIDR) and brings it up.
func ensureBridge(name string, addr *net.IPNet) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if !errors.As(err, &notFound) {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
	}
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("address bridge %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge %s up: %w", name, err)
	}
	return nil
}

// deleteLink removes a host link by name; a missing one is not an error.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	// A veth whose peer's namespace was just deleted goes away by itself,
	// possibly between the lookup and the delete.
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for linkExists(name) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if linkExists(name) {
		return fmt.Errorf("link %s still exists after delete", name)
	}
	return nil
}

// linkExists reports whether a host link exists.
func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// plugNode connects the namespace nsName to the bridge: a veth whose host
// end (hostVeth) is a bridge port and whose other end, eth0 in the
// namespace, carries addr.
func plugNode(bridge, hostVeth, nsName string, addr *net.IPNet) error {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", bridge, err)
	}
	ns, err := netns.GetFromPath(nsPath(nsName))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsName, err)
	}
	defer ns.Close()
	// The peer is created directly inside the namespace under a unique
	// name, so that no "eth0" ever appears in the host namespace.
	peer := hostVeth + "p"
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostVeth, MasterIndex: br.Attrs().Index},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", hostVeth, err)
	}
	host, err := netlink.LinkByName(hostVeth)
	if err != nil {
		return fmt.Errorf("find veth %s: %w", hostVeth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("veth %s up: %w", hostVeth, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsName, err)
	}
	defer h.Delete()
	inner, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", peer, nsName, err)
	}
	if err := h.LinkSetName(inner, "eth0"); err != nil {
		return fmt.Errorf("rename %s in %s: %w", peer, nsName, err)
	}
	if err := h.AddrAdd(inner, &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("address eth0 in %s: %w", nsName, err)
	}
	if err := h.LinkSetUp(inner); err != nil {
		return fmt.Errorf("eth0 up in %s: %w", nsName, err)
	}
	return nil
}

// DialFrom opens a TCP connection from inside a node's namespace (a
// socket keeps the namespace it was created in), to probe what the node
// can reach.
func (l *Lab) DialFrom(node, addr string, timeout time.Duration) (net.Conn, error) {
	n, err := l.Node(node)
	if err != nil {
		return nil, err
	}
	var conn net.Conn
	err = inNetns(nsPath(n.Netns), func() error {
		var derr error
		conn, derr = net.DialTimeout("tcp", addr, timeout)
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, node, err)
	}
	return conn, nil
}
