package network

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
)

// memNetwork is an in-memory Network for testing the transport: it keeps
// what it is told and answers deterministically, so the same calls on a
// local memNetwork and on one behind gRPC must give equal answers.
//
// Two allocation IDs are special: probeAllocID answers (in Interface, URL
// query encoded) which process it is and what it saw, installing nothing;
// blockAllocID blocks until the call's context ends.
type memNetwork struct {
	mu             sync.Mutex
	cfg            *Config
	setConfigCalls int
	allocs         map[string]*AllocNetwork
	peers          []Peer
	blocking       int
	lastCtxErr     string
}

const (
	probeAllocID = "probe"
	blockAllocID = "block"
)

func newMemNetwork() *memNetwork { return &memNetwork{allocs: map[string]*AllocNetwork{}} }

func (m *memNetwork) SetConfig(_ context.Context, cfg *Config) error {
	if cfg != nil {
		if _, err := netip.ParsePrefix(cfg.NodeSubnet); err != nil {
			return fmt.Errorf("node subnet %q: %w", cfg.NodeSubnet, ErrInvalidRequest)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = cfg // nil: back to unconfigured
	m.setConfigCalls++
	return nil
}

func (m *memNetwork) probe() *AllocNetwork {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := url.Values{}
	v.Set("pid", strconv.Itoa(os.Getpid()))
	v.Set("set_config_calls", strconv.Itoa(m.setConfigCalls))
	v.Set("blocking", strconv.Itoa(m.blocking))
	v.Set("ctx_err", m.lastCtxErr)
	if m.cfg != nil {
		v.Set("bridge", m.cfg.Bridge)
		v.Set("extra", string(m.cfg.Extra))
		v.Set("dns", fmt.Sprint(m.cfg.DNSServers))
	}
	return &AllocNetwork{AllocID: probeAllocID, Interface: v.Encode()}
}

func (m *memNetwork) block(ctx context.Context) error {
	m.mu.Lock()
	m.blocking++
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.blocking--
	m.lastCtxErr = ctx.Err().Error()
	m.mu.Unlock()
	return fmt.Errorf("blocked call: %w", ctx.Err())
}

func (m *memNetwork) CreateNetwork(ctx context.Context, req *AllocNetworkRequest) (*AllocNetwork, error) {
	if req == nil {
		return nil, fmt.Errorf("create network: no request: %w", ErrInvalidRequest)
	}
	switch req.AllocID {
	case probeAllocID:
		return m.probe(), nil
	case blockAllocID:
		return nil, m.block(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg == nil {
		return nil, fmt.Errorf("create network %s: %w", req.AllocID, ErrNotConfigured)
	}
	if n, ok := m.allocs[req.AllocID]; ok {
		return n, nil
	}
	n := &AllocNetwork{AllocID: req.AllocID, Mode: req.Mode, Ports: req.Ports}
	switch req.Mode {
	case ModeHost:
	case ModeNone:
		n.NamespacePath = "/var/run/netns/" + req.AllocID
	case ModeBridge:
		for _, p := range req.Ports {
			if owner := m.portOwner(p.HostPort); owner != "" {
				return nil, fmt.Errorf("create network %s: host port %d taken by %s: %w", req.AllocID, p.HostPort, owner, ErrPortConflict)
			}
		}
		ip, gw, err := m.freeAddress()
		if err != nil {
			return nil, fmt.Errorf("create network %s: %w", req.AllocID, err)
		}
		n.NamespacePath = "/var/run/netns/" + req.AllocID
		n.IP, n.Gateway, n.Interface = ip, gw, "eth0"
		n.HostsPath = "/run/berth/" + req.AllocID + "/hosts"
		n.ResolvConfPath = "/run/berth/" + req.AllocID + "/resolv.conf"
	default:
		return nil, fmt.Errorf("create network %s: unknown mode %q: %w", req.AllocID, req.Mode, ErrInvalidRequest)
	}
	m.allocs[req.AllocID] = n
	return n, nil
}

func (m *memNetwork) portOwner(port int) string {
	for id, n := range m.allocs {
		for _, p := range n.Ports {
			if p.HostPort == port {
				return id
			}
		}
	}
	return ""
}

// freeAddress is the lowest address of the node subnet after the gateway
// (its first address) that no allocation holds.
func (m *memNetwork) freeAddress() (ip, gateway string, err error) {
	prefix, err := netip.ParsePrefix(m.cfg.NodeSubnet)
	if err != nil {
		return "", "", fmt.Errorf("node subnet: %w", ErrInvalidRequest)
	}
	gw := prefix.Masked().Addr().Next()
	used := map[string]bool{}
	for _, n := range m.allocs {
		used[n.IP] = true
	}
	for a := gw.Next(); prefix.Contains(a.Next()); a = a.Next() { // not the broadcast address
		if !used[a.String()] {
			return a.String(), gw.String(), nil
		}
	}
	return "", "", ErrAddressesExhausted
}

func (m *memNetwork) DestroyNetwork(_ context.Context, allocID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.allocs, allocID)
	return nil
}

func (m *memNetwork) SetPeers(_ context.Context, peers []Peer) error {
	for _, p := range peers {
		if _, err := netip.ParsePrefix(p.Subnet); err != nil {
			return fmt.Errorf("peer %s subnet %q: %w", p.NodeID, p.Subnet, ErrInvalidRequest)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peers = peers
	return nil
}

func (m *memNetwork) Installed(context.Context) (*InstalledState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &InstalledState{}
	if m.cfg != nil {
		st.Bridge = m.cfg.Bridge
	}
	ids := make([]string, 0, len(m.allocs))
	for id := range m.allocs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st.Allocations = append(st.Allocations, m.allocs[id])
		st.Rules += len(m.allocs[id].Ports)
	}
	for _, p := range m.peers {
		st.Routes = append(st.Routes, p.Subnet)
	}
	return st, nil
}

func (m *memNetwork) Reconcile(_ context.Context, keep []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.allocs {
		if !slices.Contains(keep, id) {
			delete(m.allocs, id)
		}
	}
	return nil
}

func (m *memNetwork) Cleanup(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.allocs)
	m.peers = nil
	return nil
}
