package nft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/plugins/network"
)

// knownAllocs returns the IDs of every allocation anything of ours refers
// to: state dirs, namespaces, leases, veth aliases and port map comments.
func (p *Plugin) knownAllocs(h *netlink.Handle) (map[string]bool, error) {
	ids := map[string]bool{}
	for _, sub := range []string{"allocs", "netns"} {
		entries, err := os.ReadDir(filepath.Join(p.cfg.StateDir, sub))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", sub, err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".tmp") {
				ids[e.Name()] = true
			}
		}
	}
	for _, m := range []*ipam{p.ipam, p.ipam6} {
		leases, err := m.leases()
		if err != nil {
			return nil, err
		}
		for _, id := range leases {
			ids[id] = true
		}
	}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if a := l.Attrs(); strings.HasPrefix(a.Name, vethPrefix) && strings.HasPrefix(a.Alias, aliasPrefix) {
			ids[strings.TrimPrefix(a.Alias, aliasPrefix)] = true
		}
	}
	ports, err := p.listPorts()
	if err != nil {
		return nil, err
	}
	for _, id := range ports {
		if id != "" {
			ids[id] = true
		}
	}
	return ids, nil
}

// Installed reports the bridge, every allocation network, peer routes and
// the number of rules plus map elements in table inet berth.
func (p *Plugin) Installed(ctx context.Context) (*network.InstalledState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return nil, ErrNotConfigured
	}
	h, err := handleAt(p.nsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	st := &network.InstalledState{}
	if _, err := h.LinkByName(p.cfg.Bridge); err == nil {
		st.Bridge = p.cfg.Bridge
	}
	ids, err := p.knownAllocs(h)
	if err != nil {
		return nil, err
	}
	for id := range ids {
		an := &network.AllocNetwork{AllocID: id}
		if b, err := os.ReadFile(filepath.Join(p.allocDir(id), "network.json")); err == nil {
			if err := json.Unmarshal(b, an); err != nil {
				p.logger.WarnContext(ctx, "unreadable alloc record", "alloc_id", id, "error", err)
			}
		}
		st.Allocations = append(st.Allocations, an)
	}
	sort.Slice(st.Allocations, func(i, j int) bool { return st.Allocations[i].AllocID < st.Allocations[j].AllocID })
	routes, err := ourRoutes(h)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if r.Dst != nil {
			st.Routes = append(st.Routes, r.Dst.String())
		}
	}
	sort.Strings(st.Routes)
	if st.Rules, err = p.countRules(); err != nil {
		return nil, err
	}
	return st, nil
}

// Reconcile destroys every allocation network not in keep.
func (p *Plugin) Reconcile(ctx context.Context, keep []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return ErrNotConfigured
	}
	h, err := handleAt(p.nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	ids, err := p.knownAllocs(h)
	if err != nil {
		return err
	}
	for _, id := range keep {
		delete(ids, id)
	}
	var errs []error
	for id := range ids {
		if err := p.destroyLocked(id); err != nil {
			errs = append(errs, fmt.Errorf("remove leftover %s: %w", id, err))
			continue
		}
		p.logger.InfoContext(ctx, "removed leftover allocation network", "alloc_id", id)
	}
	return errors.Join(errs...)
}

// Cleanup removes everything the plugin installed: allocation networks,
// the table, the bridge, the vxlan device, peer routes and its state.
// Before SetConfig it removes what it can find without a StateDir.
func (p *Plugin) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, err := handleAt(p.nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	bridge := DefaultBridge
	if p.cfg != nil {
		bridge = p.cfg.Bridge
		ids, err := p.knownAllocs(h)
		if err != nil {
			errs = append(errs, err)
		}
		for id := range ids {
			if err := p.destroyLocked(id); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", id, err))
			}
		}
		for _, sub := range []string{"allocs", "netns", "leases", leases6Dir} {
			if err := os.RemoveAll(filepath.Join(p.cfg.StateDir, sub)); err != nil {
				errs = append(errs, fmt.Errorf("remove state %s: %w", sub, err))
			}
		}
	}
	if err := p.pruneRoutes(h, nil); err != nil {
		errs = append(errs, err)
	}
	if err := p.deleteTable(); err != nil {
		errs = append(errs, err)
	}
	for _, name := range []string{vxlanDevice, bridge} {
		if l, err := h.LinkByName(name); err == nil {
			if err := h.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
			}
		}
	}
	p.ports = map[portKey]string{}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	p.logger.InfoContext(ctx, "network cleaned up")
	return nil
}
