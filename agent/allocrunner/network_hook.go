package allocrunner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// The allocation's network (group `network` block): in bridge and none
// modes the alloc runner asks the agent's network plugin for a namespace
// before any task starts, hands it to every task (namespace path, hosts
// and resolv.conf files, the allocation IP in the env) and removes it once
// every task is dead. Host mode (the default) needs nothing.

// Networks prepares and removes allocation networks: the agent's network
// plugin, behind the agent (which waits for the plugin to be configured).
type Networks interface {
	CreateNetwork(ctx context.Context, req *network.AllocNetworkRequest) (*network.AllocNetwork, error)
	DestroyNetwork(ctx context.Context, allocID string) error
}

// ErrNoNetworking is returned for a bridge or none group on an alloc
// runner without Networks.
var ErrNoNetworking = errors.New("allocation networking is not available on this node")

// networkStore is the optional part of a StateStore that persists an
// allocation's network (agent/state.DB has it).
type networkStore interface {
	PutNetwork(allocID string, n *network.AllocNetwork) error
}

// Bounds of the network calls. A plugin that is down (being relaunched)
// is retried until networkSetupTimeout.
const (
	networkSetupTimeout    = 2 * time.Minute
	networkDestroyTimeout  = 30 * time.Second
	networkRetryMaxBackoff = 5 * time.Second
)

// groupNetwork is the group's network block (nil when it has none).
func groupNetwork(tg *structs.TaskGroup) *structs.NetworkResource {
	if tg == nil || len(tg.Networks) == 0 {
		return nil
	}
	return tg.Networks[0]
}

// networkMode is the group's network mode: host unless it says bridge or
// none.
func networkMode(tg *structs.TaskGroup) string {
	n := groupNetwork(tg)
	if n == nil || n.Mode == "" {
		return network.ModeHost
	}
	return n.Mode
}

// RestoreNetwork gives the runner the network persisted for its
// allocation, before Run: it is used as is instead of asking the plugin.
func (ar *AllocRunner) RestoreNetwork(n *network.AllocNetwork) {
	ar.netMu.Lock()
	defer ar.netMu.Unlock()
	ar.net = n
	ar.netUsed = n != nil
}

// allocNetwork is the allocation's prepared network (nil in host mode or
// before it is prepared).
func (ar *AllocRunner) allocNetwork() *network.AllocNetwork {
	ar.netMu.Lock()
	defer ar.netMu.Unlock()
	return ar.net
}

// networkRequest builds the plugin request from the group's network block
// and the ports the scheduler allocated.
func (ar *AllocRunner) networkRequest(mode string) *network.AllocNetworkRequest {
	a := ar.alloc()
	req := &network.AllocNetworkRequest{AllocID: a.ID, Mode: mode}
	n := groupNetwork(ar.group())
	if n != nil {
		req.Hostname = ar.hostname(n)
		if n.DNS != nil && len(n.DNS.Servers) > 0 {
			req.DNS = &network.DNSConfig{Servers: n.DNS.Servers, Searches: n.DNS.Searches, Options: n.DNS.Options}
		}
	}
	if mode != network.ModeBridge {
		return req // none mode: loopback only, nothing to map
	}
	nodeAddr := ""
	if node := ar.cfg.Node; node != nil {
		nodeAddr = node.Attributes[structs.NodeAddressAttribute]
	}
	for _, p := range portMappings(a) {
		m := network.PortMapping{Label: p.Label, HostPort: p.Host, ContainerPort: p.To}
		// The scheduler records the node's address as every port's host
		// IP; restricting the mapping to it would lose localhost, which
		// users expect to work. Only another address restricts it.
		if p.HostIP != "" && p.HostIP != nodeAddr && p.HostIP != "0.0.0.0" && p.HostIP != "::" {
			m.HostIP = p.HostIP
		}
		req.Ports = append(req.Ports, m)
	}
	return req
}

// hostname is the network block's hostname, interpolated (Nomad allows
// "${NOMAD_ALLOC_NAME}" and the like).
func (ar *AllocRunner) hostname(n *structs.NetworkResource) string {
	if n == nil || n.Hostname == "" {
		return ""
	}
	if !strings.Contains(n.Hostname, "${") {
		return n.Hostname
	}
	return taskenv.NewBuilder(ar.cfg.Node, ar.alloc(), nil, ar.cfg.Region).Build().ReplaceEnv(n.Hostname)
}

// setupNetwork prepares the allocation's network (nothing in host mode, or
// when a restored one still exists: after a reboot it is created again).
// A plugin that is unavailable is retried up
// to networkSetupTimeout; any other error is final. ctx ends when the
// allocation is killed or the agent stops.
func (ar *AllocRunner) setupNetwork(ctx context.Context) error {
	mode := networkMode(ar.group())
	if mode == network.ModeHost {
		return nil
	}
	if n := ar.allocNetwork(); n != nil {
		if n.NamespacePath == "" || isNetns(n.NamespacePath) {
			return nil
		}
		ar.logger.Warn("restored allocation network is gone, creating it again", "netns", n.NamespacePath)
		ar.netMu.Lock()
		ar.net = nil
		ar.netMu.Unlock()
	}
	if ar.cfg.Networks == nil {
		return fmt.Errorf("group network mode %q: %w", mode, ErrNoNetworking)
	}
	req := ar.networkRequest(mode)
	ctx, cancel := context.WithTimeout(ctx, networkSetupTimeout)
	defer cancel()
	ar.netMu.Lock()
	ar.netUsed = true
	ar.netMu.Unlock()
	bo := time.Duration(0)
	for {
		n, err := ar.cfg.Networks.CreateNetwork(ctx, req)
		if err == nil {
			ar.netMu.Lock()
			ar.net = n
			ar.netMu.Unlock()
			if s, ok := ar.cfg.State.(networkStore); ok {
				if err := s.PutNetwork(req.AllocID, n); err != nil {
					ar.logger.Error("persist alloc network", "error", err)
				}
			}
			ar.logger.Info("allocation network ready", "mode", mode, "ip", n.IP, "netns", n.NamespacePath)
			return nil
		}
		if !errors.Is(err, network.ErrPluginUnavailable) || ctx.Err() != nil {
			return err
		}
		bo = min(max(2*bo, 100*time.Millisecond), networkRetryMaxBackoff)
		ar.logger.Warn("network plugin unavailable, retrying", "error", err, "retry_in", bo)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(bo):
		}
	}
}

// teardownNetwork removes the allocation's network once its tasks are
// dead. It is idempotent, and tried again by Destroy if it failed.
func (ar *AllocRunner) teardownNetwork(ctx context.Context) {
	ar.netMu.Lock()
	used, done := ar.netUsed, ar.netDestroyed
	ar.netMu.Unlock()
	if !used || done || ar.cfg.Networks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, networkDestroyTimeout)
	defer cancel()
	if err := ar.cfg.Networks.DestroyNetwork(ctx, ar.ID()); err != nil {
		ar.logger.Warn("destroy allocation network", "error", err)
		return
	}
	ar.netMu.Lock()
	ar.netDestroyed = true
	ar.netMu.Unlock()
	ar.logger.Debug("allocation network destroyed")
}

// prepareNetwork runs before the coordinator lets any task start. When
// the network cannot be prepared every task fails with the reason — unless
// tasks were recovered running (their namespace exists: the failure only
// concerns the plugin, and killing them would be worse).
func (ar *AllocRunner) prepareNetwork() {
	if ar.allDead() {
		return
	}
	ctx, cancel := context.WithCancel(ar.ctx)
	defer cancel()
	go func() {
		select {
		case <-ar.killCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := ar.setupNetwork(ctx)
	if err == nil || ar.ctx.Err() != nil {
		return
	}
	select {
	case <-ar.killCh:
		return // stopped meanwhile: the tasks end as killed
	default:
	}
	if ar.hasRecoveredTasks() {
		ar.logger.Error("allocation network unavailable for recovered tasks", "error", err)
		return
	}
	ar.logger.Warn("allocation network setup failed", "error", err)
	now := ar.now()
	msg := fmt.Sprintf("failed to set up the allocation network: %v", err)
	for _, name := range ar.order {
		tr := ar.tasks[name]
		tr.update(event(EventSetupFailure, now).msg(msg).failsTask().build(), TaskStateDead, func(st *structs.TaskState) {
			st.Failed = true
			st.FinishedAt = now
		})
		tr.kill(nil)
	}
}

func (ar *AllocRunner) allDead() bool {
	for _, tr := range ar.tasks {
		if tr.snapshot().State != TaskStateDead {
			return false
		}
	}
	return true
}

func (ar *AllocRunner) hasRecoveredTasks() bool {
	for _, tr := range ar.tasks {
		tr.mu.Lock()
		rec := tr.recovered != nil
		tr.mu.Unlock()
		if rec {
			return true
		}
	}
	return false
}

// netnsHook refuses a task whose driver cannot join the allocation's
// namespace (raw_exec): running it on the host network instead would
// silently break the group's networking.
type netnsHook struct{}

func (netnsHook) Name() string { return "network" }

func (netnsHook) Prestart(ctx context.Context, tr *taskRunner) error {
	n := tr.ar.allocNetwork()
	if n == nil || n.NamespacePath == "" || tr.hookDone["network"] {
		return nil
	}
	task := tr.currentTask()
	d, err := tr.ar.cfg.Drivers(task.Driver)
	if err != nil {
		return recoverable(EventDriverFailure, fmt.Errorf("driver %q: %w", task.Driver, err))
	}
	caps, err := d.Capabilities(ctx, task.Driver)
	if err != nil {
		if errors.Is(err, driver.ErrPluginUnavailable) {
			return recoverable(EventDriverFailure, err)
		}
		return unrecoverable(EventFailedValidation, fmt.Errorf("driver %q capabilities: %w", task.Driver, err))
	}
	if !caps.NetNamespace {
		return unrecoverable(EventFailedValidation, fmt.Errorf(
			"driver %q cannot join the allocation's network namespace (group network mode %q): use a driver that can (docker, containerd, exec) or network mode \"host\"",
			task.Driver, n.Mode))
	}
	tr.hookDone["network"] = true
	return nil
}

// applyNetwork puts the allocation network into a task's driver config.
func (tr *taskRunner) applyNetwork(cfg *driver.TaskConfig) {
	n := tr.ar.allocNetwork()
	if n == nil {
		return
	}
	cfg.NetworkNamespace = n.NamespacePath
	cfg.HostsPath = n.HostsPath
	cfg.ResolvConfPath = n.ResolvConfPath
	if h := tr.ar.hostname(groupNetwork(tr.ar.group())); h != "" {
		cfg.Hostname = h
	}
}

// Network returns the allocation's prepared network (nil in host mode or
// before it is ready).
func (ar *AllocRunner) Network() *network.AllocNetwork {
	n := ar.allocNetwork()
	if n == nil {
		return nil
	}
	c := *n
	return &c
}
