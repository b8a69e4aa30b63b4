package nft

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/netlab"
	"github.com/berth-dev/berth/plugins/network"
)

const testCluster = "10.88.0.0/16"

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testConfig(stateDir string, node *netlab.Node, subnet, routing string) *network.Config {
	return &network.Config{
		StateDir:    stateDir,
		ClusterCIDR: testCluster,
		NodeSubnet:  subnet,
		NodeAddress: node.Addr.String(),
		Routing:     routing,
		DNSServers:  []string{"192.0.2.53"},
	}
}

// startPlugin runs a plugin instance inside node's namespace, configured
// with subnet, and cleans everything up when the test ends.
func startPlugin(t testing.TB, node *netlab.Node, subnet, routing string) (*Plugin, *network.Config) {
	t.Helper()
	cfg := testConfig(t.TempDir(), node, subnet, routing)
	p := newPlugin(t, node)
	if err := p.SetConfig(context.Background(), cfg); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	return p, cfg
}

func newPlugin(t testing.TB, node *netlab.Node) *Plugin {
	t.Helper()
	p, err := NewInNamespace(testLogger(t), node.NSPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		p.Close()
	})
	return p
}

func mustCreate(t testing.TB, p *Plugin, req *network.AllocNetworkRequest) *network.AllocNetwork {
	t.Helper()
	an, err := p.CreateNetwork(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateNetwork %s: %v", req.AllocID, err)
	}
	return an
}

// serveWhoAmI listens on port inside nsPath and answers every connection
// with the peer's IP address, so tests can see NAT at work.
func serveWhoAmI(t testing.TB, nsPath string, port int) {
	t.Helper()
	l, err := netlab.Listen(nsPath, "tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("listen in %s: %v", nsPath, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ip := c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Write([]byte(ip + "\n"))
			c.Close()
		}
	}()
}

// whoAmI dials addr from inside nsPath and returns the source address the
// server saw.
func whoAmI(nsPath, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := netlab.Dial(ctx, nsPath, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func expectWhoAmI(t testing.TB, what, nsPath, addr, wantSrc string) {
	t.Helper()
	got, err := whoAmI(nsPath, addr)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", what, addr, err)
	}
	if wantSrc != "" && got != wantSrc {
		t.Fatalf("%s: server saw source %s, want %s", what, got, wantSrc)
	}
}

func addrPort(ip string, port int) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }

// listTable returns `nft -j list table inet berth` in node's namespace,
// normalized (rule handles dropped) for comparison; "" when absent.
func listTable(t testing.TB, node *netlab.Node) string {
	t.Helper()
	out, err := node.Exec(context.Background(), "nft", "-j", "list", "table", "inet", "berth")
	if err != nil {
		return ""
	}
	var doc struct {
		Nftables []map[string]map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("parse nft json: %v\n%s", err, out)
	}
	var lines []string
	for _, obj := range doc.Nftables {
		for kind, body := range obj {
			if kind == "metainfo" {
				continue
			}
			delete(body, "handle")
			b, _ := json.Marshal(map[string]any{kind: body})
			lines = append(lines, string(b))
		}
	}
	return strings.Join(lines, "\n")
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
