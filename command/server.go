package command

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/server"
)

// Version is berth's release, set at build time with -ldflags.
var Version = "0.1.0-dev"

// serverFlags are the flags shared by `berth server` and `berth dev`.
type serverFlags struct {
	dataDir         string
	bind            string
	advertise       string
	httpPort        int
	raftPort        int
	gossipPort      int
	bootstrapExpect int
	join            []string
	node            string
	datacenter      string
	logLevel        string
	logJSON         bool
	enableDebug     bool
	// allocation networks handed to nodes (server/ipam.go)
	allocCIDR, allocCIDR6           string
	nodeSubnetSize, nodeSubnetSize6 int
	// Set by -config files (config_file.go).
	configFiles []string
	region      string
	tuning      serverTuning
}

func (f *serverFlags) register(cmd *cobra.Command, dev bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the node ID, Raft log and snapshots")
	fl.StringVar(&f.advertise, "advertise", "", "address to advertise to peers and clients (default: the bind address, or a private IP when binding 0.0.0.0)")
	fl.StringVar(&f.node, "node", "", "name of this server in the cluster (default: <hostname>-<node id prefix>)")
	fl.StringVar(&f.datacenter, "dc", "dc1", "datacenter of this server")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&f.logJSON, "log-json", false, "write logs as JSON")
	fl.BoolVar(&f.enableDebug, "enable-debug", dev, "serve Go's profiler under /debug/pprof/ on the HTTP port")
	fl.StringVar(&f.allocCIDR, "alloc-cidr", server.DefaultClusterCIDR, "IPv4 CIDR that allocation addresses come from, split into one subnet per node (\"\": no server-side IPAM)")
	fl.IntVar(&f.nodeSubnetSize, "node-subnet-size", server.DefaultNodeSubnetBits, "prefix length of each node's share of -alloc-cidr")
	fl.StringVar(&f.allocCIDR6, "alloc-cidr6", "", "IPv6 CIDR (a ULA such as fd88::/48) for dual-stack allocations (default: IPv4 only)")
	fl.IntVar(&f.nodeSubnetSize6, "node-subnet-size6", server.DefaultNodeSubnetBits6, "prefix length of each node's share of -alloc-cidr6")
	if dev {
		fl.StringVar(&f.bind, "bind", "127.0.0.1", "address to bind every listener to")
		fl.IntVar(&f.httpPort, "http-port", server.DefaultHTTPPort, "HTTP API port")
		fl.IntVar(&f.raftPort, "raft-port", 0, "Raft port (0: pick a free one)")
		fl.IntVar(&f.gossipPort, "gossip-port", 0, "gossip port (0: pick a free one)")
		return
	}
	fl.StringArrayVar(&f.configFiles, "config", nil, "HCL config file (repeatable; later files win, flags win over files)")
	fl.StringVar(&f.bind, "bind", "0.0.0.0", "address to bind every listener to")
	fl.IntVar(&f.httpPort, "http-port", server.DefaultHTTPPort, "HTTP API port")
	fl.IntVar(&f.raftPort, "raft-port", server.DefaultRaftPort, "Raft port")
	fl.IntVar(&f.gossipPort, "gossip-port", server.DefaultGossipPort, "gossip (memberlist) port")
	fl.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "number of servers to wait for before bootstrapping the cluster (0: join an existing one)")
	fl.StringArrayVar(&f.join, "join", nil, "gossip address host:port of a server to join (repeatable)")
}

func (f *serverFlags) logger(cmd *cobra.Command) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageErrorf("invalid -log-level %q: use debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	if f.logJSON {
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts)), nil
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts)), nil
}

func (f *serverFlags) config(cmd *cobra.Command) (*server.Config, error) {
	logger, err := f.logger(cmd)
	if err != nil {
		return nil, err
	}
	cfg := server.DefaultConfig()
	cfg.DataDir = f.dataDir
	cfg.BindAddr = f.bind
	cfg.AdvertiseAddr = f.advertise
	cfg.HTTPPort, cfg.RaftPort, cfg.GossipPort = f.httpPort, f.raftPort, f.gossipPort
	cfg.BootstrapExpect = f.bootstrapExpect
	cfg.NodeName = f.node
	cfg.Datacenter = f.datacenter
	if region, _ := cmd.Flags().GetString("region"); region != "" {
		cfg.Region = region
	} else if f.region != "" {
		cfg.Region = f.region
	}
	f.tuning.apply(cfg)
	for _, j := range f.join {
		for _, addr := range strings.Split(j, ",") {
			if addr = strings.TrimSpace(addr); addr != "" {
				cfg.Join = append(cfg.Join, addr)
			}
		}
	}
	cfg.Version = Version
	cfg.EnableDebug = f.enableDebug
	// only flags given override (config files may set these one day)
	for name, set := range map[string]func(){
		"alloc-cidr":        func() { cfg.ClusterCIDR = f.allocCIDR },
		"node-subnet-size":  func() { cfg.NodeSubnetBits = f.nodeSubnetSize },
		"alloc-cidr6":       func() { cfg.ClusterCIDR6 = f.allocCIDR6 },
		"node-subnet-size6": func() { cfg.NodeSubnetBits6 = f.nodeSubnetSize6 },
	} {
		if cmd.Flags().Changed(name) {
			set()
		}
	}
	cfg.Logger = logger
	return cfg, nil
}

func newServerCommand() *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a control-plane server (and manage servers: members)",
		Long: `Run a control-plane peer: Raft (BoltDB log, file snapshots), the FSM, gossip
membership and the HTTP API. Start three with -bootstrap-expect 3 and -join
pointing at one another; the cluster bootstraps once all three see each other.

Example:
  berth server -data-dir /var/lib/berth -bind 10.0.0.1 -bootstrap-expect 3 -join 10.0.0.2:4648`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.loadConfigFiles(cmd); err != nil {
				return err
			}
			if f.dataDir == "" {
				return usageErrorf("-data-dir is required")
			}
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "berth server %s running: HTTP http://%s, Raft %s, gossip %s\n",
				srv.Name(), srv.HTTPAddr(), srv.RaftAddr(), srv.GossipAddr())
			return waitForSignal(srv)
		},
	}
	f.register(cmd, false)
	return cmd
}

// waitForSignal runs until SIGINT/SIGTERM (graceful leave) or until the
// server stops by itself (e.g. its FSM met an entry it cannot apply).
func waitForSignal(srv *server.Server) error {
	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigCh)
	select {
	case <-sigCh:
		done := make(chan struct{})
		go func() { srv.Shutdown(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		return nil
	case <-srv.ShutdownCh():
		if err := srv.FatalError(); err != nil {
			return fmt.Errorf("server stopped: %w", err)
		}
		return nil
	}
}
