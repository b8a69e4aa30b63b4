package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"time"
)

// Default ports, the same as Nomad's so that existing tooling finds berth.
const (
	DefaultHTTPPort   = 4646
	DefaultRaftPort   = 4647
	DefaultGossipPort = 4648
)

// Config configures a control-plane server.
type Config struct {
	// NodeName is this server's name in gossip and the Raft configuration.
	// Empty means "<hostname>-<first 8 characters of the node ID>".
	NodeName   string
	Region     string
	Datacenter string
	// DataDir holds the node ID, the Raft log (BoltDB) and snapshots.
	DataDir string

	// BindAddr is the address every listener binds to. AdvertiseAddr is
	// the one peers and clients are told about; it defaults to BindAddr.
	BindAddr      string
	AdvertiseAddr string
	// Ports; 0 picks a free port (tests).
	HTTPPort   int
	RaftPort   int
	GossipPort int

	// BootstrapExpect is how many servers must see each other before the
	// first Raft configuration is written. 0 means "join an existing
	// cluster"; 1 means a single-server cluster.
	BootstrapExpect int
	// Join lists gossip addresses (host:port) of servers to join.
	Join []string

	// Raft timings. Defaults suit a LAN; tests shrink them.
	RaftHeartbeatTimeout   time.Duration
	RaftElectionTimeout    time.Duration
	RaftLeaderLeaseTimeout time.Duration
	RaftCommitTimeout      time.Duration
	// RaftSnapshotThreshold is how many log entries trigger a snapshot.
	RaftSnapshotThreshold uint64
	// ApplyTimeout bounds one Raft apply.
	ApplyTimeout time.Duration
	// ReconcileInterval is how often the leader reconciles gossip members
	// with the Raft configuration (it also reacts to gossip events at once).
	ReconcileInterval time.Duration
	// GossipLocal uses memberlist's loopback/LAN-tight timings.
	GossipLocal bool

	// MaxRequestBody bounds HTTP request bodies in bytes.
	MaxRequestBody int64
	// EnableDebug serves Go's profiler under /debug/pprof/ (on in dev mode).
	EnableDebug bool

	// NumSchedulers is how many scheduler workers the leader runs
	// (0: one per CPU; negative: none, so evaluations stay pending — for
	// tests of the API alone).
	NumSchedulers int
	// EvalNackTimeout is how long a worker may hold an evaluation without
	// acking it before the broker delivers it again.
	EvalNackTimeout time.Duration
	// EvalDeliveryLimit is how many deliveries an evaluation gets before
	// it is marked failed.
	EvalDeliveryLimit int

	// Node heartbeats (heartbeat.go). The TTL given to agents is
	// max(MinHeartbeatTTL, nodes/MaxHeartbeatsPerSecond) plus jitter; a
	// node is marked down HeartbeatGrace after its TTL passes. A new
	// leader gives every node FailoverHeartbeatTTL to check in.
	MinHeartbeatTTL        time.Duration
	MaxHeartbeatsPerSecond float64
	HeartbeatGrace         time.Duration
	FailoverHeartbeatTTL   time.Duration

	// MemoryLimit is the process's soft memory limit in bytes (Go's
	// runtime/debug.SetMemoryLimit): 0 derives it from the machine,
	// min(DefaultMemoryLimitCap, half the RAM); negative sets none. The
	// GOMEMLIMIT environment variable always wins.
	MemoryLimit int64

	// Allocation networks (ipam.go): ClusterCIDR is split into one
	// /NodeSubnetBits subnet per node ("" turns server-side IPAM off);
	// ClusterCIDR6, when set, gives each node a /NodeSubnetBits6 too.
	ClusterCIDR     string
	NodeSubnetBits  int
	ClusterCIDR6    string
	NodeSubnetBits6 int

	// Version is the berth release this server runs, advertised in gossip.
	Version string

	Logger *slog.Logger
}

// DefaultConfig returns the defaults for a production server.
func DefaultConfig() *Config {
	return &Config{
		Region:                 "global",
		Datacenter:             "dc1",
		BindAddr:               "0.0.0.0",
		HTTPPort:               DefaultHTTPPort,
		RaftPort:               DefaultRaftPort,
		GossipPort:             DefaultGossipPort,
		RaftHeartbeatTimeout:   500 * time.Millisecond,
		RaftElectionTimeout:    500 * time.Millisecond,
		RaftLeaderLeaseTimeout: 500 * time.Millisecond,
		RaftCommitTimeout:      10 * time.Millisecond,
		RaftSnapshotThreshold:  8192,
		ApplyTimeout:           30 * time.Second,
		ReconcileInterval:      5 * time.Second,
		MaxRequestBody:         16 << 20,
		NumSchedulers:          runtime.NumCPU(),
		EvalNackTimeout:        60 * time.Second,
		EvalDeliveryLimit:      3,
		MinHeartbeatTTL:        10 * time.Second,
		MaxHeartbeatsPerSecond: 50,
		HeartbeatGrace:         10 * time.Second,
		FailoverHeartbeatTTL:   5 * time.Minute,
		ClusterCIDR:            DefaultClusterCIDR,
		NodeSubnetBits:         DefaultNodeSubnetBits,
		NodeSubnetBits6:        DefaultNodeSubnetBits6,
		Version:                "dev",
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("a data dir is required"))
	}
	if c.BootstrapExpect < 0 {
		errs = append(errs, fmt.Errorf("bootstrap-expect %d is negative", c.BootstrapExpect))
	}
	if ip := net.ParseIP(c.BindAddr); ip == nil {
		errs = append(errs, fmt.Errorf("bind address %q is not an IP address", c.BindAddr))
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		errs = append(errs, fmt.Errorf("advertise address %q is not an IP address", c.AdvertiseAddr))
	}
	for name, p := range map[string]int{"http": c.HTTPPort, "raft": c.RaftPort, "gossip": c.GossipPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s port %d is out of range", name, p))
		}
	}
	if c.RaftHeartbeatTimeout <= 0 || c.RaftElectionTimeout <= 0 || c.RaftLeaderLeaseTimeout <= 0 {
		errs = append(errs, errors.New("raft timeouts must be positive"))
	}
	errs = append(errs, c.validateNetwork())
	return errors.Join(errs...)
}
