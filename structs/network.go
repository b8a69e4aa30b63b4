package structs

import (
	"maps"
	"slices"
	"strings"
)

// Network modes.
const (
	NetworkModeHost   = "host"
	NetworkModeBridge = "bridge"
	NetworkModeNone   = "none"
	// NetworkModeCNIPrefix prefixes "cni/<network name>".
	NetworkModeCNIPrefix = "cni/"
)

// MaxValidPort is the highest TCP/UDP port number.
const MaxValidPort = 65535

// NetworkResource is a network block: the mode of the allocation's network
// namespace and the ports it needs.
type NetworkResource struct {
	Mode          string
	Device        string
	CIDR          string
	IP            string
	Hostname      string
	MBits         int
	DNS           *DNSConfig
	ReservedPorts []Port // ports with a static host port
	DynamicPorts  []Port // ports whose host port the scheduler picks
	CNI           *CNIConfig
}

// Port is a port block. Value is the host port (static for reserved ports,
// chosen for dynamic ones); To is the port inside the allocation (0: same
// as Value, -1: the same as the dynamic host port).
type Port struct {
	Label           string
	Value           int
	To              int
	HostNetwork     string
	IgnoreCollision bool
}

// DNSConfig is the dns block of a network.
type DNSConfig struct {
	Servers  []string
	Searches []string
	Options  []string
}

// CNIConfig passes arguments to CNI plugins.
type CNIConfig struct {
	Args map[string]string
}

// Copy returns a deep copy.
func (n *NetworkResource) Copy() *NetworkResource {
	if n == nil {
		return nil
	}
	c := *n
	if n.DNS != nil {
		c.DNS = &DNSConfig{
			Servers:  slices.Clone(n.DNS.Servers),
			Searches: slices.Clone(n.DNS.Searches),
			Options:  slices.Clone(n.DNS.Options),
		}
	}
	c.ReservedPorts = slices.Clone(n.ReservedPorts)
	c.DynamicPorts = slices.Clone(n.DynamicPorts)
	if n.CNI != nil {
		c.CNI = &CNIConfig{Args: maps.Clone(n.CNI.Args)}
	}
	return &c
}

// HasPorts reports whether the network asks for any port.
func (n *NetworkResource) HasPorts() bool {
	return n != nil && len(n.ReservedPorts)+len(n.DynamicPorts) > 0
}

// PortLabels returns the labels of all ports, reserved first.
func (n *NetworkResource) PortLabels() []string {
	if n == nil {
		return nil
	}
	labels := make([]string, 0, len(n.ReservedPorts)+len(n.DynamicPorts))
	for _, p := range n.ReservedPorts {
		labels = append(labels, p.Label)
	}
	for _, p := range n.DynamicPorts {
		labels = append(labels, p.Label)
	}
	return labels
}

// validateNetwork checks one network block. labels collects port labels
// across every network of a group so duplicates between them are caught;
// static collects static host ports per host network.
func validateNetwork(n *NetworkResource, p problems, labels map[string]bool, static map[string]map[int]bool) {
	switch {
	case n.Mode == NetworkModeHost, n.Mode == NetworkModeBridge, n.Mode == NetworkModeNone, n.Mode == "":
	case strings.HasPrefix(n.Mode, NetworkModeCNIPrefix):
		// berth programs networks with its own plugin, not CNI binaries
		p.addf("network mode %q is not supported by berth (it has no CNI): use bridge, host or none", n.Mode)
	default:
		p.addf("invalid network mode %q, must be bridge, host or none", n.Mode)
	}
	if n.MBits < 0 {
		p.addf("network mbits must not be negative, got %d", n.MBits)
	}
	check := func(port Port, reserved bool) {
		pp := p.in("port %q", port.Label)
		if port.Label == "" {
			pp = p.in("port")
			pp.addf("missing port label")
		} else if labels[port.Label] {
			pp.addf("port label given more than once")
		}
		labels[port.Label] = true
		if reserved {
			if port.Value < 1 || port.Value > MaxValidPort {
				pp.addf("static port %d out of range 1..%d", port.Value, MaxValidPort)
			} else {
				hn := port.HostNetwork
				if hn == "" {
					hn = "default"
				}
				if static[hn] == nil {
					static[hn] = map[int]bool{}
				}
				if static[hn][port.Value] && !port.IgnoreCollision {
					pp.addf("static port %d already used by another port of the group", port.Value)
				}
				static[hn][port.Value] = true
			}
		} else if port.Value < 0 || port.Value > MaxValidPort {
			pp.addf("port value %d out of range 0..%d", port.Value, MaxValidPort)
		}
		if port.To < -1 || port.To > MaxValidPort {
			pp.addf("port to %d out of range -1..%d", port.To, MaxValidPort)
		}
	}
	for _, port := range n.ReservedPorts {
		check(port, true)
	}
	for _, port := range n.DynamicPorts {
		check(port, false)
	}
}
