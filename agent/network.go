package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/agent/allocrunner"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// Allocation networking on the agent. The network plugin (out of process,
// like the drivers, or Config.Network in process) is launched once the
// first registration answer carries the node's subnet, since its config
// needs it; it is then reconciled against the allocations the agent runs
// (removing leftovers of allocations that ended while the agent was away)
// and fed the other nodes' subnets from a blocking query on the peers
// endpoint. Alloc runners reach it through netManager, whose calls wait
// until the plugin is ready.

// Network states of the agent.
const (
	netStarting    = iota // waiting for the registration answer or the plugin
	netReady              // configured and reconciled
	netUnavailable        // disabled, no subnet, or the plugin failed to start
)

const (
	// peersWait is how long one blocking peers query waits.
	peersWait = 30 * time.Second
	// networkCallTimeout bounds the agent's own plugin calls.
	networkCallTimeout = 30 * time.Second
	// networkConfigFile keeps the last config the plugin accepted, for
	// -cleanup-network.
	networkConfigFile = "config.json"
)

// netManager owns the agent's network plugin. It implements
// allocrunner.Networks.
type netManager struct {
	a      *Agent
	logger *slog.Logger
	// n is the plugin (Config.Network, or the supervisor's Network once
	// started); nil while none is configured.
	n   network.Network
	sup *network.Supervisor

	mu      sync.Mutex
	state   int
	err     error         // why networking is unavailable
	changed chan struct{} // closed and replaced on every state change
	want    *network.Config
	wantSet bool
	applied *network.Config
	peers   []network.Peer
	kick    chan struct{}
}

var _ allocrunner.Networks = (*netManager)(nil)

func newNetManager(a *Agent) *netManager {
	m := &netManager{
		a: a, logger: a.cfg.Logger.With("component", "agent_network"),
		changed: make(chan struct{}), kick: make(chan struct{}, 1),
	}
	if a.cfg.Network == nil && a.cfg.NetworkPlugin == "" {
		m.state = netUnavailable
		m.err = fmt.Errorf("%w: no network plugin is configured on this agent (-network-plugin)", allocrunner.ErrNoNetworking)
	}
	return m
}

func (m *netManager) setState(state int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state, m.err = state, err
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *netManager) plugin() network.Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// pluginName names the network plugin for the node's attributes ("" when
// networking is disabled).
func (m *netManager) pluginName() string {
	switch {
	case m.a.cfg.NetworkPlugin != "":
		return filepath.Base(m.a.cfg.NetworkPlugin)
	case m.a.cfg.Network != nil:
		return "in-process"
	}
	return ""
}

// enabled reports whether a plugin is configured at all.
func (m *netManager) enabled() bool { return m.a.cfg.Network != nil || m.a.cfg.NetworkPlugin != "" }

// registered takes the node's subnet from a registration answer.
func (m *netManager) registered(resp *structs.NodeHeartbeatResponse) {
	if !m.enabled() || resp == nil {
		return
	}
	var cfg *network.Config
	if resp.NetworkSubnet != "" {
		cfg = m.pluginConfig(resp)
	}
	m.mu.Lock()
	m.want, m.wantSet = cfg, true
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// pluginConfig is the plugin's config for a registration answer.
func (m *netManager) pluginConfig(resp *structs.NodeHeartbeatResponse) *network.Config {
	c := m.a.cfg
	hosts := []string{c.AdvertiseAddr}
	if c.AdvertiseAddr != "127.0.0.1" {
		hosts = append(hosts, "127.0.0.1")
	}
	return &network.Config{
		StateDir:      filepath.Join(c.DataDir, "network"),
		Bridge:        c.Bridge,
		ClusterCIDR:   resp.ClusterCIDR,
		NodeSubnet:    resp.NetworkSubnet,
		ClusterCIDR6:  resp.ClusterCIDR6,
		NodeSubnet6:   resp.NetworkSubnet6,
		NodeAddress:   c.AdvertiseAddr,
		HostAddresses: hosts,
		Routing:       c.NetworkRouting,
	}
}

// loop applies registration answers: the first with a subnet launches and
// configures the plugin, later changes reconfigure it.
func (m *netManager) loop(ctx context.Context) {
	if !m.enabled() {
		return
	}
	defer m.stop()
	retry := newBackoff(time.Second, 30*time.Second)
	var retryC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-retryC:
		}
		retryC = nil
		m.mu.Lock()
		want, set := m.want, m.wantSet
		m.mu.Unlock()
		if !set {
			continue
		}
		if err := m.apply(ctx, want); err != nil {
			if ctx.Err() != nil {
				return
			}
			d := retry.next()
			m.logger.Error("allocation networking unavailable", "error", err, "retry_in", d)
			retryC = time.After(d)
			continue
		}
		retry.reset()
	}
}

// apply brings the plugin to want. An error is retried by loop.
func (m *netManager) apply(ctx context.Context, want *network.Config) error {
	m.mu.Lock()
	state, applied := m.state, m.applied
	m.mu.Unlock()
	if want == nil {
		if state != netReady {
			m.setState(netUnavailable, fmt.Errorf("%w: the servers assigned this node no allocation subnet (their IPAM is off)", allocrunner.ErrNoNetworking))
		}
		return nil
	}
	if state == netReady {
		if reflect.DeepEqual(want, applied) {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, networkCallTimeout)
		defer cancel()
		if err := m.plugin().SetConfig(cctx, want); err != nil {
			return fmt.Errorf("reconfigure network plugin: %w", err)
		}
		m.setApplied(want)
		m.logger.Info("network plugin reconfigured", "subnet", want.NodeSubnet)
		return nil
	}
	if err := m.start(ctx, want); err != nil {
		m.setState(netUnavailable, fmt.Errorf("%w: %w", network.ErrPluginUnavailable, err))
		return err
	}
	m.setApplied(want)
	// leftovers of allocations that ended while the agent was down go
	// before any new network is created (alloc runners wait for ready)
	if err := m.reconcile(ctx, m.plugin()); err != nil {
		m.logger.Warn("reconcile allocation networks", "error", err)
	}
	m.setState(netReady, nil)
	m.logger.Info("allocation networking ready", "subnet", want.NodeSubnet, "routing", want.Routing)
	m.a.goLoop(m.peersLoop)
	return nil
}

func (m *netManager) setApplied(cfg *network.Config) {
	m.mu.Lock()
	m.applied = cfg
	m.mu.Unlock()
	if err := writeNetworkConfig(cfg); err != nil {
		m.logger.Warn("persist network config", "error", err)
	}
}

// start launches (or, in process, configures) the plugin.
func (m *netManager) start(ctx context.Context, cfg *network.Config) error {
	if m.a.cfg.Network != nil {
		cctx, cancel := context.WithTimeout(ctx, networkCallTimeout)
		defer cancel()
		if err := m.a.cfg.Network.SetConfig(cctx, cfg); err != nil {
			return fmt.Errorf("configure network: %w", err)
		}
		m.mu.Lock()
		m.n = m.a.cfg.Network
		m.mu.Unlock()
		return nil
	}
	sup := network.NewSupervisor(network.SupervisorConfig{
		Name:      m.a.cfg.NetworkPlugin,
		Command:   networkCommand(&m.a.cfg),
		Config:    cfg,
		Logger:    m.a.cfg.Logger,
		OnRestart: m.onRestart,
	})
	sctx, cancel := context.WithTimeout(ctx, pluginStartTimeout)
	defer cancel()
	if err := sup.Start(sctx); err != nil {
		return fmt.Errorf("start network plugin %s: %w", m.a.cfg.NetworkPlugin, err)
	}
	m.mu.Lock()
	m.sup, m.n = sup, sup.Network()
	m.mu.Unlock()
	return nil
}

// networkCommand launches the plugin: a path is an external binary, a
// name a built-in ("berth plugin NAME").
func networkCommand(cfg *Config) func() *exec.Cmd {
	name := cfg.NetworkPlugin
	if strings.ContainsRune(name, os.PathSeparator) {
		return func() *exec.Cmd { return exec.Command(name) }
	}
	return func() *exec.Cmd { return cfg.PluginCommand(name) }
}

// onRestart runs after a crashed plugin was relaunched (and configured
// again by the supervisor): what changed while it was down is reconciled
// and the routes are programmed again.
func (m *netManager) onRestart(ctx context.Context, n network.Network) {
	m.logger.Warn("network plugin restarted, reconciling")
	if err := m.reconcile(ctx, n); err != nil {
		m.logger.Warn("reconcile after network plugin restart", "error", err)
	}
	m.mu.Lock()
	peers := m.peers
	m.mu.Unlock()
	if peers != nil {
		cctx, cancel := context.WithTimeout(ctx, networkCallTimeout)
		defer cancel()
		if err := n.SetPeers(cctx, peers); err != nil {
			m.logger.Warn("set peers after network plugin restart", "error", err)
		}
	}
}

// reconcile removes every allocation network but those of the
// allocations the agent runs.
func (m *netManager) reconcile(ctx context.Context, n network.Network) error {
	keep := m.a.runnerIDs()
	cctx, cancel := context.WithTimeout(ctx, networkCallTimeout)
	defer cancel()
	if err := n.Reconcile(cctx, keep); err != nil {
		return err
	}
	m.logger.Debug("allocation networks reconciled", "kept", len(keep))
	return nil
}

// ready waits until the plugin is ready and returns it, or why it is not.
func (m *netManager) ready(ctx context.Context) (network.Network, error) {
	for {
		m.mu.Lock()
		state, err, ch, n := m.state, m.err, m.changed, m.n
		m.mu.Unlock()
		switch state {
		case netReady:
			return n, nil
		case netUnavailable:
			return nil, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the network plugin: %w", ctx.Err())
		}
	}
}

// CreateNetwork implements allocrunner.Networks.
func (m *netManager) CreateNetwork(ctx context.Context, req *network.AllocNetworkRequest) (*network.AllocNetwork, error) {
	n, err := m.ready(ctx)
	if err != nil {
		return nil, err
	}
	return n.CreateNetwork(ctx, req)
}

// DestroyNetwork implements allocrunner.Networks. With networking
// disabled nothing can have been created: there is nothing to remove.
func (m *netManager) DestroyNetwork(ctx context.Context, allocID string) error {
	n, err := m.ready(ctx)
	if errors.Is(err, allocrunner.ErrNoNetworking) {
		return nil
	}
	if err != nil {
		return err
	}
	return n.DestroyNetwork(ctx, allocID)
}

// stop kills the plugin process; what it installed stays for the next
// agent to reconcile.
func (m *netManager) stop() {
	m.mu.Lock()
	sup := m.sup
	m.mu.Unlock()
	if sup != nil {
		sup.Stop()
	}
}

// runnerIDs lists the allocations the agent runs.
func (a *Agent) runnerIDs() []string {
	a.runnersMu.Lock()
	defer a.runnersMu.Unlock()
	out := make([]string, 0, len(a.runners))
	for id := range a.runners {
		out = append(out, id)
	}
	return out
}

// NetworkPluginPid is the PID of the network plugin process (0 when none
// runs): for operators' debugging and tests.
func (a *Agent) NetworkPluginPid() int {
	if a.net == nil {
		return 0
	}
	a.net.mu.Lock()
	sup := a.net.sup
	a.net.mu.Unlock()
	if sup == nil {
		return 0
	}
	return sup.Pid()
}

// AllocNetwork returns the network prepared for an allocation the agent
// runs (nil in host mode, before it is ready, or for an unknown alloc).
func (a *Agent) AllocNetwork(allocID string) *network.AllocNetwork {
	a.runnersMu.Lock()
	r := a.runners[allocID]
	a.runnersMu.Unlock()
	if r == nil {
		return nil
	}
	return r.ar.Network()
}
