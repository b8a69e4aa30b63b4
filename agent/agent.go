// Package agent is berth's worker (Nomad's client, Kubernetes' kubelet):
// it joins the gossip pool, finds the servers, registers its node with
// its fingerprint, heartbeats, watches the node's allocations, prepares
// their networks through the network plugin (network.go), runs them
// through driver plugins (agent/allocrunner), reports their status back in
// batches, and serves the per-allocation client API (logs, exec, stats,
// signal, restart). Its state (agent/state) lets a restarted agent
// re-attach to the tasks it left running.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/berth-dev/berth/agent/allocrunner"
	"github.com/berth-dev/berth/agent/clientapi"
	"github.com/berth-dev/berth/agent/containerdproc"
	"github.com/berth-dev/berth/agent/hoststats"
	"github.com/berth-dev/berth/agent/state"
	"github.com/berth-dev/berth/structs"
)

// Agent is a running worker.
type Agent struct {
	cfg    Config
	logger *slog.Logger

	nodeID, secret string
	db             *state.DB
	servers        *serverList
	plugins        *pluginSet
	net            *netManager
	gossip         *memberlist.Memberlist
	containerd     *containerdproc.Process

	httpLn  net.Listener
	httpSrv *http.Server

	nodeMu sync.Mutex
	node   *structs.Node

	runnersMu sync.Mutex
	runners   map[string]*runner

	updates *updater
	// reregister asks the heartbeat loop to register again (fingerprint
	// changed).
	reregister   chan struct{}
	registered   chan struct{}
	registerOnce sync.Once

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// runner is an alloc runner and what the watcher knows of its alloc.
type runner struct {
	ar            *allocrunner.AllocRunner
	modifyIndex   uint64
	desiredStatus string
}

// New validates cfg and prepares an agent; Start runs it.
func New(cfg Config, logger *slog.Logger) (*Agent, error) {
	if logger != nil {
		cfg.Logger = logger
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	a := &Agent{
		cfg:        cfg,
		logger:     cfg.Logger.With("component", "agent"),
		runners:    map[string]*runner{},
		reregister: make(chan struct{}, 1),
		registered: make(chan struct{}),
	}
	a.servers = newServerList(cfg.Servers)
	a.updates = newUpdater(a)
	a.net = newNetManager(a)
	return a, nil
}

// Start brings the agent up: identity, state, containerd (if asked),
// plugins, the HTTP API, fingerprint, gossip; restores the allocations it
// ran before; then registers and runs its loops in the background.
func (a *Agent) Start(ctx context.Context) error {
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(a.cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	var err error
	if a.nodeID, a.secret, err = loadIdentity(a.cfg.DataDir); err != nil {
		return err
	}
	a.logger = a.logger.With("node_id", a.nodeID)
	if a.db, err = state.Open(filepath.Join(a.cfg.DataDir, "agent.db")); err != nil {
		return err
	}
	if err := a.startContainerd(ctx); err != nil {
		a.Shutdown()
		return err
	}
	if err := a.startHTTP(); err != nil {
		a.Shutdown()
		return err
	}
	a.plugins = newPluginSet(a)
	a.plugins.start(ctx)
	node, err := a.buildNode(ctx)
	if err != nil {
		a.Shutdown()
		return err
	}
	a.setNode(node)
	if err := a.startGossip(); err != nil {
		a.Shutdown()
		return err
	}
	a.restore()
	// the network plugin starts once registration hands out the subnet,
	// and first reconciles against the allocations restored above
	a.goLoop(a.net.loop)
	a.goLoop(a.heartbeatLoop)
	a.goLoop(a.watchLoop)
	a.goLoop(a.updates.loop)
	a.goLoop(a.fingerprintLoop)
	a.logger.Info("agent started", "node", a.cfg.NodeName, "http_addr", a.HTTPAddr(), "drivers", a.plugins.names())
	return nil
}

func (a *Agent) goLoop(fn func(ctx context.Context)) {
	a.wg.Add(1)
	go func() { defer a.wg.Done(); fn(a.ctx) }()
}

// NodeID is the node's ID (stable across restarts).
func (a *Agent) NodeID() string { return a.nodeID }

// HTTPAddr is the agent API's host:port.
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	_, port, _ := net.SplitHostPort(a.httpLn.Addr().String())
	return net.JoinHostPort(a.cfg.AdvertiseAddr, port)
}

// GossipAddr is memberlist's host:port, or "" without gossip.
func (a *Agent) GossipAddr() string {
	if a.gossip == nil {
		return ""
	}
	n := a.gossip.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Registered is closed after the first successful registration.
func (a *Agent) Registered() <-chan struct{} { return a.registered }

// Node returns a copy of the node as last registered.
func (a *Agent) Node() *structs.Node {
	a.nodeMu.Lock()
	defer a.nodeMu.Unlock()
	c := *a.node
	return &c
}

func (a *Agent) setNode(n *structs.Node) {
	a.nodeMu.Lock()
	a.node = n
	a.nodeMu.Unlock()
}

// Allocs returns the allocations the agent runs, as it would report them.
func (a *Agent) Allocs() []*structs.Allocation {
	a.runnersMu.Lock()
	defer a.runnersMu.Unlock()
	out := make([]*structs.Allocation, 0, len(a.runners))
	for _, r := range a.runners {
		out = append(out, r.ar.Alloc())
	}
	return out
}

// Shutdown stops the agent without stopping its tasks: they keep running
// and a later agent on the same data dir re-attaches to them. The node is
// not deregistered: to the servers this looks like a crash, and they mark
// the node down once its heartbeat TTL passes (heartbeats are the
// authority, not a goodbye).
func (a *Agent) Shutdown() {
	a.stopOnce.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
		a.runnersMu.Lock()
		runners := a.runners
		a.runners = map[string]*runner{}
		a.runnersMu.Unlock()
		var wg sync.WaitGroup
		for _, r := range runners {
			wg.Add(1)
			go func() { defer wg.Done(); r.ar.Shutdown() }()
		}
		wg.Wait()
		if a.httpSrv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = a.httpSrv.Shutdown(sctx)
			cancel()
		}
		if a.gossip != nil {
			_ = a.gossip.Shutdown()
		}
		if a.plugins != nil {
			a.plugins.stop()
		}
		if a.containerd != nil {
			if err := a.containerd.Stop(); err != nil {
				a.logger.Warn("stop containerd", "error", err)
			}
		}
		if a.db != nil {
			if err := a.db.Close(); err != nil {
				a.logger.Warn("close agent state", "error", err)
			}
		}
		a.logger.Info("agent stopped")
	})
}

// startContainerd starts a private containerd when asked and none answers.
func (a *Agent) startContainerd(ctx context.Context) error {
	c := &a.cfg.Containerd
	if !c.StartIfMissing {
		return nil
	}
	if c.Address != "" && containerdproc.Reachable(ctx, c.Address) {
		return nil
	}
	if _, err := lookPath(c.Binary); err != nil {
		a.logger.Warn("containerd is not reachable and not installed; containerd drivers will be unhealthy", "address", c.Address)
		return nil
	}
	dir := filepath.Join(a.cfg.DataDir, "containerd")
	addr := c.Address
	if addr == "" {
		addr = filepath.Join(dir, "c.sock")
		if len(addr) >= 100 {
			// unix socket paths are limited to 108 bytes
			short, err := os.MkdirTemp("", "berth-ctr-")
			if err != nil {
				return fmt.Errorf("containerd socket dir: %w", err)
			}
			addr = filepath.Join(short, "c.sock")
		}
	}
	p, err := containerdproc.Start(ctx, containerdproc.Options{
		Binary: c.Binary, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"), Address: addr,
	})
	if err != nil {
		return fmt.Errorf("start private containerd: %w", err)
	}
	a.containerd = p
	c.Address = p.Address()
	a.logger.Info("started private containerd", "address", c.Address)
	return nil
}

// startHTTP serves the client API (logs, exec, stats, signal, restart).
func (a *Agent) startHTTP() error {
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.BindAddr, strconv.Itoa(a.cfg.HTTPPort)))
	if err != nil {
		return fmt.Errorf("agent http listener: %w", err)
	}
	a.httpLn = ln
	a.httpSrv = &http.Server{
		Handler: clientapi.Handler(allocsAPI{a}, a.cfg.Logger, clientapi.WithHostStats(
			hoststats.New(hoststats.Options{DataDir: a.cfg.DataDir, Logger: a.cfg.Logger}), a.nodeID)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("agent http server", "error", err)
		}
	}()
	return nil
}

// StopAllocs kills every allocation's tasks and removes their directories
// (bounded by timeout): for `berth dev`, which leaves nothing behind. A
// normal agent shutdown leaves tasks running instead.
func (a *Agent) StopAllocs(timeout time.Duration) {
	a.runnersMu.Lock()
	runners := a.runners
	a.runners = map[string]*runner{}
	a.runnersMu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.ar.Destroy(timeout); err != nil {
				a.logger.Warn("destroy allocation", "alloc_id", r.ar.ID(), "error", err)
			}
		}()
	}
	wg.Wait()
}
