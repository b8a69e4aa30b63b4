package netlab

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLabConnectivity(t *testing.T) {
	lab := New(t, "conn")
	a, b := lab.AddNode("a"), lab.AddNode("b")
	out := lab.AddOutside("internet")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, target := range []*Node{b, out} {
		l, err := Listen(target.NSPath, "tcp", net.JoinHostPort(target.Addr.String(), "7000"))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).IP.String()))
			c.Close()
		}()
		c, err := Dial(ctx, a.NSPath, "tcp", net.JoinHostPort(target.Addr.String(), "7000"))
		if err != nil {
			t.Fatalf("dial %s: %v", target.Name, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		l.Close()
		if err != nil || string(got) != a.Addr.String() {
			t.Fatalf("%s saw source %q (%v), want %s", target.Name, got, err, a.Addr)
		}
	}
	// Partition: with a listener on b, a dial fails only while b is cut off.
	l, err := Listen(b.NSPath, "tcp", net.JoinHostPort(b.Addr.String(), "7001"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dialB := func() error {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		defer dcancel()
		c, err := Dial(dctx, a.NSPath, "tcp", net.JoinHostPort(b.Addr.String(), "7001"))
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := b.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if dialB() == nil {
		t.Fatal("disconnected node reachable")
	}
	if err := b.Reconnect(); err != nil {
		t.Fatal(err)
	}
	// Links take a moment to come back (carrier, neighbor resolution).
	deadline := time.Now().Add(10 * time.Second)
	for err := dialB(); err != nil; err = dialB() {
		if time.Now().After(deadline) {
			t.Fatalf("reconnected node unreachable: %v", err)
		}
	}
	if out, err := b.Exec(ctx, "ip", "-4", "-o", "addr", "show", "eth0"); err != nil || !contains(out, b.Addr.String()) {
		t.Fatalf("exec in node: %s %v", out, err)
	}
	lab.Close()
	if _, err := os.Stat(a.NSPath); !os.IsNotExist(err) {
		t.Fatalf("node namespace left after Close: %v", err)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestLabIPv6 checks nodes reach each other over their lab IPv6 addresses.
func TestLabIPv6(t *testing.T) {
	lab := New(t, "conn6")
	a, b := lab.AddNode("a"), lab.AddNode("b")
	if a.Addr6.String() != "fd99::2" || b.Addr6.String() != "fd99::3" {
		t.Fatalf("node IPv6 addresses %s, %s", a.Addr6, b.Addr6)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Listen(b.NSPath, "tcp", net.JoinHostPort(b.Addr6.String(), "7000"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).IP.String()))
		c.Close()
	}()
	c, err := Dial(ctx, a.NSPath, "tcp", net.JoinHostPort(b.Addr6.String(), "7000"))
	if err != nil {
		t.Fatalf("dial b over IPv6: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != a.Addr6.String() {
		t.Fatalf("b saw source %q (%v), want %s", got, err, a.Addr6)
	}
}
