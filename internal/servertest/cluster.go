// Package servertest runs clusters of berth servers inside one test
// process, on loopback with random ports and tight timings.
package servertest

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/server"
)

// Cluster is a set of in-process servers that gossip and form one Raft
// group.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	servers []*server.Server
	dirs    []string
	// ports remembers each server's ports after its first start, so a
	// restart comes back at the same addresses, as a real server does.
	ports []serverPorts
	// Configure, if set, adjusts each server's config before it starts.
	configure func(i int, c *server.Config)
}

type serverPorts struct{ http, raft, gossip int }

func portOf(t testing.TB, hostport string) int {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("parse %q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("parse %q: %v", hostport, err)
	}
	return n
}

// Option adjusts a cluster.
type Option func(*Cluster)

// WithConfig adjusts every server's config before it starts.
func WithConfig(fn func(i int, c *server.Config)) Option {
	return func(c *Cluster) {
		prev := c.configure
		c.configure = func(i int, cfg *server.Config) {
			if prev != nil {
				prev(i, cfg)
			}
			fn(i, cfg)
		}
	}
}

// WithoutSchedulers runs no scheduler workers: evaluations stay pending,
// for tests that look at the API's bookkeeping rather than at placement.
func WithoutSchedulers() Option {
	return func(c *Cluster) {
		prev := c.configure
		c.configure = func(i int, cfg *server.Config) {
			cfg.NumSchedulers = -1
			if prev != nil {
				prev(i, cfg)
			}
		}
	}
}

// NewCluster starts n servers with bootstrap-expect n and waits for a
// leader. Everything is torn down by t.Cleanup.
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for _, o := range opts {
		o(c)
	}
	base := t.TempDir()
	for i := 0; i < n; i++ {
		c.dirs = append(c.dirs, filepath.Join(base, fmt.Sprintf("server-%d", i+1)))
	}
	c.servers = make([]*server.Server, n)
	c.ports = make([]serverPorts, n)
	for i := 0; i < n; i++ {
		c.servers[i] = c.start(i, n)
	}
	t.Cleanup(c.Close)
	c.WaitForLeader(15 * time.Second)
	return c
}

// Config returns the config server i starts with.
func (c *Cluster) Config(i, expect int) *server.Config {
	cfg := server.DefaultConfig()
	cfg.NodeName = fmt.Sprintf("server-%d", i+1)
	cfg.DataDir = c.dirs[i]
	cfg.BindAddr = "127.0.0.1"
	p := c.ports[i]
	cfg.HTTPPort, cfg.RaftPort, cfg.GossipPort = p.http, p.raft, p.gossip
	cfg.BootstrapExpect = expect
	cfg.GossipLocal = true
	// Tight enough for fast tests, loose enough that a busy CI machine
	// running -race does not make leadership flap.
	cfg.RaftHeartbeatTimeout = 400 * time.Millisecond
	cfg.RaftElectionTimeout = 400 * time.Millisecond
	cfg.RaftLeaderLeaseTimeout = 200 * time.Millisecond
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(&testWriter{t: c.t, prefix: cfg.NodeName}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, s := range c.servers {
		if s != nil {
			cfg.Join = append(cfg.Join, s.GossipAddr())
		}
	}
	if c.configure != nil {
		c.configure(i, cfg)
	}
	return cfg
}

func (c *Cluster) start(i, expect int) *server.Server {
	c.t.Helper()
	s, err := server.New(c.Config(i, expect))
	if err != nil {
		c.t.Fatalf("start server %d: %v", i+1, err)
	}
	c.ports[i] = serverPorts{
		http:   portOf(c.t, s.HTTPAddr()),
		raft:   portOf(c.t, s.RaftAddr()),
		gossip: portOf(c.t, s.GossipAddr()),
	}
	return s
}

// Servers returns the servers; a killed server's slot is nil.
func (c *Cluster) Servers() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*server.Server(nil), c.servers...)
}

// Server returns server i (nil if killed).
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Leader returns the index and server that leads, or -1, nil.
func (c *Cluster) Leader() (int, *server.Server) {
	for i, s := range c.Servers() {
		if s != nil && s.IsLeader() {
			return i, s
		}
	}
	return -1, nil
}

// WaitForLeader waits until one running server leads and every running
// server knows it.
func (c *Cluster) WaitForLeader(timeout time.Duration) (int, *server.Server) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		i, l := c.Leader()
		if l != nil && c.allAgreeOn(l) {
			return i, l
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader after %s", timeout)
	return -1, nil
}

func (c *Cluster) allAgreeOn(l *server.Server) bool {
	for _, s := range c.Servers() {
		if s == nil {
			continue
		}
		if addr, _ := s.Leader(); string(addr) != l.RaftAddr() {
			return false
		}
	}
	return true
}

// Kill stops server i abruptly (no gossip leave), keeping its data dir.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Kill()
	}
}

// Replace starts a new server in slot i: a fresh machine with a new name,
// new ports and the given (empty) data dir, joining the others.
func (c *Cluster) Replace(i int, name, dataDir string) *server.Server {
	c.t.Helper()
	c.Kill(i)
	c.mu.Lock()
	c.dirs[i] = dataDir
	c.ports[i] = serverPorts{}
	c.mu.Unlock()
	cfg := c.Config(i, 0)
	cfg.NodeName = name
	s, err := server.New(cfg)
	if err != nil {
		c.t.Fatalf("start replacement server %s: %v", name, err)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return s
}

// Restart starts server i again on its data dir, joining the others.
func (c *Cluster) Restart(i int) *server.Server {
	c.t.Helper()
	c.Kill(i)
	s := c.start(i, len(c.dirs))
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return s
}

// HTTPAddrs lists the HTTP base URLs of the running servers.
func (c *Cluster) HTTPAddrs() []string {
	var out []string
	for _, s := range c.Servers() {
		if s != nil {
			out = append(out, "http://"+s.HTTPAddr())
		}
	}
	return out
}

// Close stops every server.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for i := range c.Servers() {
		wg.Add(1)
		go func() { defer wg.Done(); c.Kill(i) }()
	}
	wg.Wait()
}

// WaitFor polls cond every 10ms until it is true or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// HTTPGet is a small helper for tests that probe the raw API.
func HTTPGet(url string) (*http.Response, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	return client.Get(url)
}

// testWriter sends log lines to t.Log until the test ends.
type testWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	done   bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		defer func() {
			// t.Log panics after the test ends; background goroutines
			// may still log while shutting down.
			if recover() != nil {
				w.done = true
			}
		}()
		w.t.Log(w.prefix + ": " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
