package network

import (
	"context"
	"sync"
)

// supervisedNetwork is the Supervisor's stable Network: each call goes to
// the plugin process current at the time of the call.
type supervisedNetwork struct {
	s *Supervisor

	mu  sync.Mutex
	cfg *Config // last config set, handed to every relaunched process
}

var _ Network = (*supervisedNetwork)(nil)

func (p *supervisedNetwork) config() *Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// SetConfig configures the current process and, once it accepted the
// config, remembers it for relaunches: the node's subnet may have changed
// since Start, and a relaunched plugin must get the config in force.
func (p *supervisedNetwork) SetConfig(ctx context.Context, cfg *Config) error {
	n, err := p.s.proc.Current()
	if err != nil {
		return err
	}
	if err := n.SetConfig(ctx, cfg); err != nil {
		return err
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	return nil
}

func (p *supervisedNetwork) CreateNetwork(ctx context.Context, req *AllocNetworkRequest) (*AllocNetwork, error) {
	n, err := p.s.proc.Current()
	if err != nil {
		return nil, err
	}
	return n.CreateNetwork(ctx, req)
}

func (p *supervisedNetwork) DestroyNetwork(ctx context.Context, allocID string) error {
	n, err := p.s.proc.Current()
	if err != nil {
		return err
	}
	return n.DestroyNetwork(ctx, allocID)
}

func (p *supervisedNetwork) SetPeers(ctx context.Context, peers []Peer) error {
	n, err := p.s.proc.Current()
	if err != nil {
		return err
	}
	return n.SetPeers(ctx, peers)
}

func (p *supervisedNetwork) Installed(ctx context.Context) (*InstalledState, error) {
	n, err := p.s.proc.Current()
	if err != nil {
		return nil, err
	}
	return n.Installed(ctx)
}

func (p *supervisedNetwork) Reconcile(ctx context.Context, keep []string) error {
	n, err := p.s.proc.Current()
	if err != nil {
		return err
	}
	return n.Reconcile(ctx, keep)
}

func (p *supervisedNetwork) Cleanup(ctx context.Context) error {
	n, err := p.s.proc.Current()
	if err != nil {
		return err
	}
	return n.Cleanup(ctx)
}
