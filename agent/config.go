package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/network"
)

// Default ports. The agent's HTTP API listens on 4656, not Nomad's 4646,
// so that an agent and a server (or `berth dev`) can share a machine
// without clashing; gossip likewise uses 4658.
const (
	DefaultHTTPPort   = 4656
	DefaultGossipPort = 4658
)

// Config configures an agent.
type Config struct {
	// DataDir holds the node identity, agent.db and the alloc dirs.
	DataDir string
	// NodeName defaults to the hostname.
	NodeName   string
	Datacenter string // dc1
	Region     string // global
	NodePool   string
	NodeClass  string
	Meta       map[string]string

	// Servers are server HTTP addresses ("127.0.0.1:4646"); optional when
	// Join finds them through gossip.
	Servers []string
	// Join are gossip addresses to join (host:port).
	Join []string
	// BindAddr is what the listeners bind; AdvertiseAddr what others are
	// told (default: BindAddr, or the first non-loopback address when
	// BindAddr is 0.0.0.0).
	BindAddr      string
	AdvertiseAddr string
	// HTTPPort is the agent API's port (0: random, for tests).
	HTTPPort int
	// GossipPort is memberlist's port (0: random). Negative disables
	// gossip (Servers must then be given).
	GossipPort int
	// GossipLocal uses memberlist's loopback timings.
	GossipLocal bool

	// PluginDir holds external driver plugins: every executable in it is
	// launched with no arguments and serves the driver names it
	// fingerprints.
	PluginDir string
	// PluginCommand builds the command of a built-in plugin
	// (default: this executable with "plugin NAME").
	PluginCommand func(name string) *exec.Cmd
	// Drivers, when set, are used in process instead of launching plugin
	// processes (tests): driver name → driver.
	Drivers map[string]driver.Driver
	// DisableBuiltinPlugins launches no built-in plugin (tests using
	// Drivers, or agents with external plugins only).
	DisableBuiltinPlugins bool

	Containerd     ContainerdConfig
	RawExecEnabled bool

	// NetworkPlugin is the network plugin preparing bridge and none mode
	// allocation networks: a built-in name ("nft", launched as "berth
	// plugin nft" through PluginCommand) or the path of an external
	// plugin binary. "" disables allocation networking: such groups fail.
	NetworkPlugin string
	// Network, when set, is used in process instead of launching
	// NetworkPlugin (tests).
	Network network.Network
	// Bridge is the node bridge's name (the plugin's default, berth0, when
	// empty); NetworkRouting is how other nodes' subnets are reached:
	// network.RoutingHostGW (default) or network.RoutingVXLAN.
	Bridge         string
	NetworkRouting string

	ReservedResources ReservedResources
	MinDynamicPort    int
	MaxDynamicPort    int

	// Version is berth's version, reported as berth.version.
	Version string
	// FingerprintInterval is how often drivers are re-fingerprinted (30s).
	FingerprintInterval time.Duration
	// UpdateBatchWindow is how long status changes are coalesced (20ms).
	UpdateBatchWindow time.Duration

	Logger *slog.Logger
}

// ContainerdConfig says how the containerd-based drivers reach containerd.
type ContainerdConfig struct {
	Address   string
	Namespace string // "berth"
	// StartIfMissing starts a private containerd under DataDir when none
	// answers at Address and the binary is installed (dev mode, tests).
	StartIfMissing     bool
	Binary             string // "containerd" on PATH by default
	Mirrors            map[string][]string
	InsecureRegistries []string
	Auth               map[string]driver.RegistryAuth
}

// ReservedResources are kept back from the scheduler.
type ReservedResources struct {
	CPU      int64 // MHz
	MemoryMB int64
	DiskMB   int64
	Ports    string // "22,80,8000-8100"
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("a data dir is required"))
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			errs = append(errs, fmt.Errorf("node name: %w", err))
		}
		c.NodeName = h
	}
	if c.Datacenter == "" {
		c.Datacenter = "dc1"
	}
	if c.Region == "" {
		c.Region = "global"
	}
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if net.ParseIP(c.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("bind address %q is not an IP address", c.BindAddr))
	}
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = c.BindAddr
		if ip := net.ParseIP(c.BindAddr); ip != nil && ip.IsUnspecified() {
			c.AdvertiseAddr = firstPrivateIP()
		}
	}
	if net.ParseIP(c.AdvertiseAddr) == nil {
		errs = append(errs, fmt.Errorf("advertise address %q is not an IP address", c.AdvertiseAddr))
	}
	if c.Containerd.Namespace == "" {
		c.Containerd.Namespace = "berth"
	}
	if c.Containerd.Binary == "" {
		c.Containerd.Binary = "containerd"
	}
	if c.MinDynamicPort == 0 {
		c.MinDynamicPort = 20000
	}
	if c.MaxDynamicPort == 0 {
		c.MaxDynamicPort = 32000
	}
	if c.MinDynamicPort > c.MaxDynamicPort {
		errs = append(errs, fmt.Errorf("dynamic port range %d-%d is empty", c.MinDynamicPort, c.MaxDynamicPort))
	}
	if c.FingerprintInterval <= 0 {
		c.FingerprintInterval = 30 * time.Second
	}
	if c.UpdateBatchWindow <= 0 {
		c.UpdateBatchWindow = 20 * time.Millisecond
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PluginCommand == nil {
		c.PluginCommand = defaultPluginCommand
	}
	switch c.NetworkRouting {
	case "":
		c.NetworkRouting = network.RoutingHostGW
	case network.RoutingHostGW, network.RoutingVXLAN:
	default:
		errs = append(errs, fmt.Errorf("network routing %q: want %q or %q", c.NetworkRouting, network.RoutingHostGW, network.RoutingVXLAN))
	}
	if len(c.Servers) == 0 && (len(c.Join) == 0 || c.GossipPort < 0) {
		errs = append(errs, errors.New("no way to find the servers: give servers or join addresses"))
	}
	return errors.Join(errs...)
}

// defaultPluginCommand re-executes this binary as a built-in plugin.
func defaultPluginCommand(name string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.Command(self, "plugin", name)
}

// firstPrivateIP is the first non-loopback IPv4 address, else loopback.
func firstPrivateIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
