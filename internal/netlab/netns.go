package netlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-dev/berth/internal/nsutil"
)

// InNamespace runs fn on a locked OS thread switched into the network
// namespace at nsPath. Sockets created by fn stay in that namespace after
// it returns, so a listener or connection made here may be used from any
// goroutine.
func InNamespace(nsPath string, fn func() error) error { return nsutil.Run(nsPath, fn) }

// Listen opens a listener inside the namespace at nsPath.
func Listen(nsPath, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := InNamespace(nsPath, func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet listener inside the namespace at nsPath.
func ListenPacket(nsPath, network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := InNamespace(nsPath, func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// Dial connects from inside the namespace at nsPath.
func Dial(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNamespace(nsPath, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func createNamedNS(path string) error { return nsutil.CreateNamed(path) }

func removeNamedNS(path string) error { return nsutil.RemoveNamed(path) }

func withHandle(nsPath string, fn func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	defer h.Close()
	return fn(h)
}

func linkUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
