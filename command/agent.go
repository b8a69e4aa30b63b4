package command

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/agent"
)

// agentFlags are the flags of `berth agent`.
type agentFlags struct {
	dataDir, node, dc, nodeClass, nodePool string
	meta, join, servers                    []string
	bind, advertise                        string
	httpPort, gossipPort                   int
	containerdAddr, containerdNS           string
	rawExec                                bool
	pluginDir                              string
	mirrors, insecure                      []string
	logLevel                               string
	logJSON                                bool
	networkPlugin, bridge, networkRouting  string
	cleanupNetwork                         bool
	// Set by -config files (config_file.go).
	configFiles []string
	region      string
}

func (f *agentFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.configFiles, "config", nil, "HCL config file (repeatable; later files win, flags win over files)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the node identity, agent state and allocation directories")
	fl.StringVar(&f.node, "node", "", "node name (default: the hostname)")
	fl.StringVar(&f.dc, "dc", "dc1", "datacenter of this node")
	fl.StringVar(&f.nodeClass, "node-class", "", "node class")
	fl.StringVar(&f.nodePool, "node-pool", "", "node pool (default: default)")
	fl.StringArrayVar(&f.meta, "meta", nil, "node metadata key=value (repeatable)")
	fl.StringArrayVar(&f.join, "join", nil, "gossip address host:port of a server to join (repeatable)")
	fl.StringArrayVar(&f.servers, "servers", nil, "server HTTP address host:port (repeatable; optional with -join)")
	fl.StringVar(&f.bind, "bind", "0.0.0.0", "address to bind the agent's listeners to")
	fl.StringVar(&f.advertise, "advertise", "", "address to advertise (default: the bind address, or a private IP when binding 0.0.0.0)")
	fl.IntVar(&f.httpPort, "http-port", agent.DefaultHTTPPort, "agent HTTP API port (not 4646, so an agent and a server can share a host)")
	fl.IntVar(&f.gossipPort, "gossip-port", agent.DefaultGossipPort, "gossip (memberlist) port")
	fl.StringVar(&f.containerdAddr, "containerd-address", "/run/containerd/containerd.sock", "containerd socket")
	fl.StringVar(&f.containerdNS, "containerd-namespace", "berth", "containerd namespace for this agent's containers")
	fl.BoolVar(&f.rawExec, "raw-exec", false, "enable the raw_exec driver (unisolated host processes)")
	fl.StringVar(&f.pluginDir, "plugin-dir", "", "directory of external driver plugins")
	fl.StringArrayVar(&f.mirrors, "registry-mirror", nil, "registry mirror host=url, e.g. docker.io=http://127.0.0.1:5000 (repeatable)")
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, "registry host:port spoken to over plain HTTP (repeatable)")
	fl.StringVar(&f.networkPlugin, "network-plugin", "nft", `network plugin for bridge-mode allocations: a built-in ("nft") or an executable path; "" disables`)
	fl.StringVar(&f.bridge, "bridge", "", "node bridge of the allocation networks (default: the plugin's, berth0)")
	fl.StringVar(&f.networkRouting, "network-routing", "host-gw", "how allocations reach other nodes' subnets: host-gw (nodes on one L2) or vxlan")
	fl.BoolVar(&f.cleanupNetwork, "cleanup-network", false, "remove everything the network plugin installed on this node (namespaces, veths, routes, bridge, nftables table), then exit")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&f.logJSON, "log-json", false, "write logs as JSON")
}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (f *agentFlags) config(cmd *cobra.Command) (agent.Config, error) {
	cfg := agent.Config{
		DataDir: f.dataDir, NodeName: f.node, Datacenter: f.dc, NodeClass: f.nodeClass, NodePool: f.nodePool,
		Join: splitList(f.join), Servers: splitList(f.servers), BindAddr: f.bind, AdvertiseAddr: f.advertise,
		HTTPPort: f.httpPort, GossipPort: f.gossipPort, PluginDir: f.pluginDir, RawExecEnabled: f.rawExec,
		Containerd:    agent.ContainerdConfig{Address: f.containerdAddr, Namespace: f.containerdNS, InsecureRegistries: splitList(f.insecure)},
		NetworkPlugin: f.networkPlugin, Bridge: f.bridge, NetworkRouting: f.networkRouting,
		Version: Version,
	}
	if region, _ := cmd.Flags().GetString("region"); region != "" {
		cfg.Region = region
	} else if f.region != "" {
		cfg.Region = f.region
	}
	for _, kv := range f.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cfg, usageErrorf("invalid -meta %q: use key=value", kv)
		}
		if cfg.Meta == nil {
			cfg.Meta = map[string]string{}
		}
		cfg.Meta[k] = v
	}
	for _, m := range f.mirrors {
		host, url, ok := strings.Cut(m, "=")
		if !ok || host == "" || url == "" {
			return cfg, usageErrorf("invalid -registry-mirror %q: use host=url", m)
		}
		if cfg.Containerd.Mirrors == nil {
			cfg.Containerd.Mirrors = map[string][]string{}
		}
		cfg.Containerd.Mirrors[host] = append(cfg.Containerd.Mirrors[host], url)
	}
	return cfg, nil
}

func newAgentCommand() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a worker agent",
		Long: `Run a worker: join the gossip pool, find the servers, register this node with
its fingerprint, and run the allocations the servers place on it through the
driver plugins (containerd, docker, exec, raw_exec). Stopping the agent leaves
its tasks running; a new agent on the same data dir re-attaches to them.

Example:
  berth agent -data-dir /var/lib/berth-agent -join 10.0.0.1:4648`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.loadConfigFiles(cmd); err != nil {
				return err
			}
			if f.dataDir == "" {
				return usageErrorf("-data-dir is required")
			}
			if f.cleanupNetwork {
				return f.runCleanupNetwork(cmd)
			}
			if len(f.join) == 0 && len(f.servers) == 0 {
				return usageErrorf("give -join (gossip) or -servers (HTTP) to find the servers")
			}
			sf := &serverFlags{logLevel: f.logLevel, logJSON: f.logJSON}
			logger, err := sf.logger(cmd)
			if err != nil {
				return err
			}
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			a, err := agent.New(cfg, logger)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := a.Start(ctx); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "berth agent %s running: node %s, HTTP http://%s\n", cfg.NodeName, a.NodeID(), a.HTTPAddr())
			<-ctx.Done()
			a.Shutdown()
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// runCleanupNetwork is `berth agent -cleanup-network`: the network plugin
// removes everything it installed on this node, then the command exits.
func (f *agentFlags) runCleanupNetwork(cmd *cobra.Command) error {
	if f.networkPlugin == "" {
		return usageErrorf("-cleanup-network needs a -network-plugin")
	}
	sf := &serverFlags{logLevel: f.logLevel, logJSON: f.logJSON}
	logger, err := sf.logger(cmd)
	if err != nil {
		return err
	}
	cfg, err := f.config(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := agent.CleanupNetwork(ctx, cfg, logger); err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), "berth agent: allocation networks removed")
	return nil
}
