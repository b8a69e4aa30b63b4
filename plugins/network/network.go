// Package network is the contract between the agent and network plugins:
// the Go interface a network plugin implements, the types that cross the
// boundary, and (in grpc_*.go) the versioned gRPC glue over
// hashicorp/go-plugin that carries them between processes.
//
// A network plugin prepares each allocation's network before its tasks
// start (a namespace in bridge mode, its address and port mappings) and
// removes it afterwards; it also routes the node's allocation subnet to
// the other nodes'. It owns everything it installs (the bridge, veths,
// namespaces, routes, the nftables table) and must be able to list it, so
// the agent can reconcile after a restart.
package network

import (
	"context"
	"encoding/json"
)

// ProtocolVersion is the version of this contract (the go-plugin protocol
// version of network plugins).
const ProtocolVersion = 1

// Network modes of a group's network block.
const (
	ModeBridge = "bridge"
	ModeHost   = "host"
	ModeNone   = "none"
)

// Cross-node routing modes.
const (
	RoutingHostGW = "host-gw"
	RoutingVXLAN  = "vxlan"
)

// Network is what a network plugin implements. Every method must be safe
// for concurrent use and idempotent: creating a network that exists with
// the same request returns it; destroying one that does not exist is not
// an error.
type Network interface {
	// SetConfig is called after the plugin starts and whenever the node's
	// subnet or addresses change. It creates the node bridge and the
	// node-wide rules (masquerade) if missing.
	SetConfig(ctx context.Context, cfg *Config) error
	// CreateNetwork prepares an allocation's network.
	CreateNetwork(ctx context.Context, req *AllocNetworkRequest) (*AllocNetwork, error)
	// DestroyNetwork removes exactly what CreateNetwork installed for the
	// allocation, and releases its address.
	DestroyNetwork(ctx context.Context, allocID string) error
	// SetPeers programs routes to every other node's allocation subnet;
	// peers not in the list lose their routes.
	SetPeers(ctx context.Context, peers []Peer) error
	// Installed reports what the plugin has installed.
	Installed(ctx context.Context) (*InstalledState, error)
	// Reconcile removes every allocation network not in keep (leftovers
	// of allocations that stopped while the agent was down).
	Reconcile(ctx context.Context, keep []string) error
	// Cleanup removes everything the plugin ever installed on this node.
	Cleanup(ctx context.Context) error
}

// Config is the node's network configuration, from the agent and servers.
type Config struct {
	// StateDir is a directory the plugin owns (address leases…).
	StateDir string
	// Bridge is the node bridge's name (default "berth0").
	Bridge string
	// ClusterCIDR is the whole allocation address space ("10.88.0.0/16");
	// NodeSubnet is this node's share of it ("10.88.3.0/24"), handed out
	// by the servers. ClusterCIDR6/NodeSubnet6 are the IPv6 equivalents
	// (empty: IPv4 only).
	ClusterCIDR  string
	NodeSubnet   string
	ClusterCIDR6 string `json:",omitempty"`
	NodeSubnet6  string `json:",omitempty"`
	// NodeAddress is the node's own address other nodes reach it on;
	// HostAddresses are the addresses port mappings listen on (DNAT from
	// them and from localhost).
	NodeAddress   string
	HostAddresses []string `json:",omitempty"`
	// Routing is RoutingHostGW or RoutingVXLAN.
	Routing string
	// VXLANID and VXLANPort configure the overlay (defaults 42, 4789).
	VXLANID   int `json:",omitempty"`
	VXLANPort int `json:",omitempty"`
	// MTU of the bridge and veths (0: the default route device's).
	MTU int `json:",omitempty"`
	// DNSServers and DNSSearches go into allocations' resolv.conf
	// (empty: the host's).
	DNSServers  []string `json:",omitempty"`
	DNSSearches []string `json:",omitempty"`
	// Extra is configuration for external plugins, free-form.
	Extra json.RawMessage `json:",omitempty"`
}

// AllocNetworkRequest asks for an allocation's network.
type AllocNetworkRequest struct {
	AllocID string
	// Mode is ModeBridge, ModeHost or ModeNone.
	Mode string
	// Hostname is written into the allocation's /etc/hosts.
	Hostname string        `json:",omitempty"`
	Ports    []PortMapping `json:",omitempty"`
	// DNS overrides the node's resolv.conf content for this allocation.
	DNS *DNSConfig `json:",omitempty"`
}

// PortMapping maps a host port to a port in the allocation.
type PortMapping struct {
	Label string
	// HostPort is the port on the node (static or dynamic, given by the
	// scheduler); ContainerPort is the port in the allocation (the
	// port's `to`, or HostPort when zero).
	HostPort      int
	ContainerPort int
	// Protocol is "tcp" (default) or "udp"; both are mapped when "".
	Protocol string `json:",omitempty"`
	// HostIP restricts the mapping to one node address.
	HostIP string `json:",omitempty"`
}

// DNSConfig is the resolv.conf of an allocation.
type DNSConfig struct {
	Servers  []string
	Searches []string `json:",omitempty"`
	Options  []string `json:",omitempty"`
}

// AllocNetwork is an allocation's prepared network.
type AllocNetwork struct {
	AllocID string
	Mode    string
	// NamespacePath is the network namespace tasks join ("" for host mode;
	// for none mode a namespace with only loopback).
	NamespacePath string `json:",omitempty"`
	// IP (and IP6) is the allocation's address; Gateway its default route.
	IP      string `json:",omitempty"`
	IP6     string `json:",omitempty"`
	Gateway string `json:",omitempty"`
	// Interface is the allocation-side interface name ("eth0").
	Interface string `json:",omitempty"`
	// HostsPath and ResolvConfPath are files the driver mounts at
	// /etc/hosts and /etc/resolv.conf.
	HostsPath      string        `json:",omitempty"`
	ResolvConfPath string        `json:",omitempty"`
	Ports          []PortMapping `json:",omitempty"`
}

// Peer is another node's allocation subnet and where to reach it.
type Peer struct {
	NodeID  string
	Address string
	Subnet  string
	Subnet6 string `json:",omitempty"`
}

// InstalledState lists what the plugin has installed on the node.
type InstalledState struct {
	Bridge      string
	Allocations []*AllocNetwork
	// Routes are destination subnets routed to peers.
	Routes []string `json:",omitempty"`
	// Rules counts the nftables rules and map elements in berth's table.
	Rules int
}
