package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/plugins/network"
)

// ErrSubnetFull is returned when the node subnet has no free address.
var ErrSubnetFull = network.ErrAddressesExhausted

// ipam hands out addresses of the node subnet. Each lease is a file
// StateDir/leases/<ip> (StateDir/leases6/<ip> for the IPv6 subnet) holding the allocation ID, created with O_EXCL so a
// claim is atomic and survives plugin restarts; the lowest free address is
// handed out first, so released addresses are reused.
type ipam struct {
	dir    string
	subnet netip.Prefix
}

func newIPAM(stateDir, leasesDir string, subnet netip.Prefix) *ipam {
	return &ipam{dir: filepath.Join(stateDir, leasesDir), subnet: subnet.Masked()}
}

// gateway is the subnet's first address (the bridge's).
func gateway(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// leases returns ip → alloc ID of every lease on disk.
func (m *ipam) leases() (map[netip.Addr]string, error) {
	entries, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[netip.Addr]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	out := make(map[netip.Addr]string, len(entries))
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.dir, e.Name()))
		if err != nil {
			continue
		}
		out[ip] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// acquire returns the alloc's existing lease or claims the lowest free one.
func (m *ipam) acquire(allocID string) (netip.Addr, error) {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return netip.Addr{}, fmt.Errorf("create leases dir: %w", err)
	}
	current, err := m.leases()
	if err != nil {
		return netip.Addr{}, err
	}
	for ip, id := range current {
		if id == allocID && m.subnet.Contains(ip) {
			return ip, nil
		}
	}
	gw := gateway(m.subnet)
	// Bounded by the subnet size and, as leases are taken lowest first,
	// in practice by the number of leases; the last address is broadcast
	// (IPv4) and is skipped for IPv6 too.
	for ip := gw.Next(); m.subnet.Contains(ip) && m.subnet.Contains(ip.Next()); ip = ip.Next() {
		if _, taken := current[ip]; taken {
			continue
		}
		f, err := os.OpenFile(filepath.Join(m.dir, ip.String()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue // claimed concurrently
		}
		if err != nil {
			return netip.Addr{}, fmt.Errorf("claim lease %s: %w", ip, err)
		}
		_, werr := f.WriteString(allocID)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(f.Name())
			return netip.Addr{}, fmt.Errorf("write lease %s: %w", ip, werr)
		}
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: %s", ErrSubnetFull, m.subnet)
}

// release removes every lease of the allocation.
func (m *ipam) release(allocID string) error {
	current, err := m.leases()
	if err != nil {
		return err
	}
	var errs []error
	for ip, id := range current {
		if id != allocID {
			continue
		}
		if err := os.Remove(filepath.Join(m.dir, ip.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("release lease %s: %w", ip, err))
		}
	}
	return errors.Join(errs...)
}
