package command

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/server"
)

// The -config FILE files of `berth server` and `berth agent`: Nomad-style
// agent configuration in HCL (lab/config/*.hcl.tmpl render them). Files
// are applied in order, later ones overriding earlier ones, and a flag
// given on the command line overrides them all. Anything the schema does
// not know is an error with its file and line.

// fileConfig is one config file.
type fileConfig struct {
	Name       *string         `hcl:"name,optional"`
	Region     *string         `hcl:"region,optional"`
	Datacenter *string         `hcl:"datacenter,optional"`
	DataDir    *string         `hcl:"data_dir,optional"`
	BindAddr   *string         `hcl:"bind_addr,optional"`
	LogLevel   *string         `hcl:"log_level,optional"`
	LogJSON    *bool           `hcl:"log_json,optional"`
	Advertise  *fileAdvertise  `hcl:"advertise,block"`
	Ports      *filePorts      `hcl:"ports,block"`
	Server     *fileServer     `hcl:"server,block"`
	Client     *fileClient     `hcl:"client,block"`
	Plugins    []filePlugin    `hcl:"plugin,block"`
	Containerd *fileContainerd `hcl:"containerd,block"`
}

type fileAdvertise struct {
	HTTP  *string   `hcl:"http,optional"`
	RPC   *string   `hcl:"rpc,optional"`
	Serf  *string   `hcl:"serf,optional"`
	Range hcl.Range `hcl:",def_range"`
}

type filePorts struct {
	HTTP  *int      `hcl:"http,optional"`
	RPC   *int      `hcl:"rpc,optional"`
	Serf  *int      `hcl:"serf,optional"`
	Range hcl.Range `hcl:",def_range"`
}

type fileJoin struct {
	RetryJoin []string `hcl:"retry_join,optional"`
}

type fileServer struct {
	Enabled              *bool     `hcl:"enabled,optional"`
	BootstrapExpect      *int      `hcl:"bootstrap_expect,optional"`
	MinHeartbeatTTL      *string   `hcl:"min_heartbeat_ttl,optional"`
	HeartbeatGrace       *string   `hcl:"heartbeat_grace,optional"`
	FailoverHeartbeatTTL *string   `hcl:"failover_heartbeat_ttl,optional"`
	ServerJoin           *fileJoin `hcl:"server_join,block"`
	Range                hcl.Range `hcl:",def_range"`
}

type fileClient struct {
	Enabled   *bool             `hcl:"enabled,optional"`
	Servers   []string          `hcl:"servers,optional"`
	NodeClass *string           `hcl:"node_class,optional"`
	NodePool  *string           `hcl:"node_pool,optional"`
	Meta      map[string]string `hcl:"meta,optional"`
	Options   map[string]string `hcl:"options,optional"`
	// network_plugin and network_routing are berth's; bridge_network_name
	// is Nomad's name for the node bridge.
	NetworkPlugin  *string   `hcl:"network_plugin,optional"`
	NetworkRouting *string   `hcl:"network_routing,optional"`
	BridgeName     *string   `hcl:"bridge_network_name,optional"`
	ServerJoin     *fileJoin `hcl:"server_join,block"`
	Range          hcl.Range `hcl:",def_range"`
}

type filePlugin struct {
	Name   string            `hcl:"name,label"`
	Config *filePluginConfig `hcl:"config,block"`
	Range  hcl.Range         `hcl:",def_range"`
}

type filePluginConfig struct {
	Enabled *bool `hcl:"enabled,optional"`
}

type fileContainerd struct {
	Address            *string   `hcl:"address,optional"`
	Namespace          *string   `hcl:"namespace,optional"`
	InsecureRegistries []string  `hcl:"insecure_registries,optional"`
	Range              hcl.Range `hcl:",def_range"`
}

// errConfigFile marks a config file that cannot be used.
var errConfigFile = errors.New("config file")

// at formats a problem at a place in a config file.
func at(r hcl.Range, format string, a ...any) error {
	return fmt.Errorf("%w %s:%d: %s", errConfigFile, r.Filename, r.Start.Line, fmt.Sprintf(format, a...))
}

// parseConfigFile reads and decodes one config file.
func parseConfigFile(path string) (*fileConfig, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfigFile, err)
	}
	return parseConfig(path, src)
}

func parseConfig(name string, src []byte) (*fileConfig, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, name)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	var c fileConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &c); diags.HasErrors() {
		return nil, diagError(diags)
	}
	return &c, nil
}

// diagError reports every error diagnostic as FILE:LINE: summary; detail.
func diagError(diags hcl.Diagnostics) error {
	var errs []error
	for _, d := range diags.Errs() {
		var hd *hcl.Diagnostic
		if !errors.As(d, &hd) || hd.Subject == nil {
			errs = append(errs, fmt.Errorf("%w: %w", errConfigFile, d))
			continue
		}
		msg := hd.Summary
		if hd.Detail != "" {
			msg += "; " + hd.Detail
		}
		errs = append(errs, at(*hd.Subject, "%s", msg))
	}
	return errors.Join(errs...)
}

// setter assigns a file value to a flag variable unless the flag was
// given on the command line.
type setter struct {
	cmd *cobra.Command
}

func (s setter) str(flag string, dst *string, v *string) {
	if v != nil && !s.cmd.Flags().Changed(flag) {
		*dst = *v
	}
}

func (s setter) integer(flag string, dst *int, v *int) {
	if v != nil && !s.cmd.Flags().Changed(flag) {
		*dst = *v
	}
}

func (s setter) boolean(flag string, dst *bool, v *bool) {
	if v != nil && !s.cmd.Flags().Changed(flag) {
		*dst = *v
	}
}

// commonTargets are the flags of the settings berth server and berth
// agent share (the file's top level and its http and serf ports).
type commonTargets struct {
	node, dc, dataDir, bind, logLevel, region, advertise *string
	logJSON                                              *bool
	httpPort, gossipPort                                 *int
}

// common applies the shared settings of c to t.
func (s setter) common(c *fileConfig, t commonTargets) error {
	s.str("node", t.node, c.Name)
	s.str("dc", t.dc, c.Datacenter)
	s.str("data-dir", t.dataDir, c.DataDir)
	s.str("bind", t.bind, c.BindAddr)
	s.str("log-level", t.logLevel, c.LogLevel)
	s.boolean("log-json", t.logJSON, c.LogJSON)
	if c.Region != nil {
		*t.region = *c.Region
	}
	if c.Advertise != nil {
		host, err := advertiseHost(c.Advertise)
		if err != nil {
			return err
		}
		s.str("advertise", t.advertise, host)
	}
	if p := c.Ports; p != nil {
		s.integer("http-port", t.httpPort, p.HTTP)
		s.integer("gossip-port", t.gossipPort, p.Serf)
	}
	return nil
}

func (s setter) list(flag string, dst *[]string, v []string) {
	if v != nil && !s.cmd.Flags().Changed(flag) {
		*dst = v
	}
}

// advertiseHost is the one advertise address berth has: every address in
// the block (host or host:port) must name the same host.
func advertiseHost(a *fileAdvertise) (*string, error) {
	var host string
	for _, v := range []*string{a.HTTP, a.RPC, a.Serf} {
		if v == nil || *v == "" {
			continue
		}
		h := *v
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		if host != "" && h != host {
			return nil, at(a.Range, "advertise: berth advertises one address for http, rpc and serf; got %q and %q", host, h)
		}
		host = h
	}
	if host == "" {
		return nil, nil
	}
	return &host, nil
}

// serverTuning are server.Config knobs that only config files set.
type serverTuning struct {
	minHeartbeatTTL, heartbeatGrace, failoverHeartbeatTTL time.Duration
}

func (t serverTuning) apply(cfg *server.Config) {
	if t.minHeartbeatTTL > 0 {
		cfg.MinHeartbeatTTL = t.minHeartbeatTTL
	}
	if t.heartbeatGrace > 0 {
		cfg.HeartbeatGrace = t.heartbeatGrace
	}
	if t.failoverHeartbeatTTL > 0 {
		cfg.FailoverHeartbeatTTL = t.failoverHeartbeatTTL
	}
}

func parseDuration(r hcl.Range, key string, v *string, dst *time.Duration) error {
	if v == nil {
		return nil
	}
	d, err := time.ParseDuration(*v)
	if err != nil || d <= 0 {
		return at(r, "server.%s: %q is not a positive duration like \"10s\"", key, *v)
	}
	*dst = d
	return nil
}

// loadConfigFiles applies f.configFiles to the server flags.
func (f *serverFlags) loadConfigFiles(cmd *cobra.Command) error {
	s := setter{cmd}
	for _, path := range f.configFiles {
		c, err := parseConfigFile(path)
		if err != nil {
			return err
		}
		if c.Client != nil && (c.Client.Enabled == nil || *c.Client.Enabled) {
			return at(c.Client.Range, "client block: berth server runs no client; put it in the config of berth agent")
		}
		for _, p := range c.Plugins {
			return at(p.Range, "plugin %q: plugins are configured on berth agent", p.Name)
		}
		if c.Containerd != nil {
			return at(c.Containerd.Range, "containerd block: containerd is configured on berth agent")
		}
		if err := s.common(c, commonTargets{node: &f.node, dc: &f.datacenter, dataDir: &f.dataDir, bind: &f.bind,
			logLevel: &f.logLevel, logJSON: &f.logJSON, region: &f.region, advertise: &f.advertise,
			httpPort: &f.httpPort, gossipPort: &f.gossipPort}); err != nil {
			return err
		}
		if p := c.Ports; p != nil {
			s.integer("raft-port", &f.raftPort, p.RPC)
		}
		if sv := c.Server; sv != nil {
			if sv.Enabled != nil && !*sv.Enabled {
				return at(sv.Range, "server.enabled = false: this file is not for berth server")
			}
			s.integer("bootstrap-expect", &f.bootstrapExpect, sv.BootstrapExpect)
			if sv.ServerJoin != nil {
				s.list("join", &f.join, sv.ServerJoin.RetryJoin)
			}
			if err := errors.Join(
				parseDuration(sv.Range, "min_heartbeat_ttl", sv.MinHeartbeatTTL, &f.tuning.minHeartbeatTTL),
				parseDuration(sv.Range, "heartbeat_grace", sv.HeartbeatGrace, &f.tuning.heartbeatGrace),
				parseDuration(sv.Range, "failover_heartbeat_ttl", sv.FailoverHeartbeatTTL, &f.tuning.failoverHeartbeatTTL),
			); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadConfigFiles applies f.configFiles to the agent flags.
func (f *agentFlags) loadConfigFiles(cmd *cobra.Command) error {
	s := setter{cmd}
	for _, path := range f.configFiles {
		c, err := parseConfigFile(path)
		if err != nil {
			return err
		}
		if c.Server != nil && (c.Server.Enabled == nil || *c.Server.Enabled) {
			return at(c.Server.Range, "server block: berth agent runs no server; put it in the config of berth server")
		}
		if c.Ports != nil && c.Ports.RPC != nil {
			return at(c.Ports.Range, "ports.rpc: berth agent has no RPC port (http and serf only)")
		}
		if err := s.common(c, commonTargets{node: &f.node, dc: &f.dc, dataDir: &f.dataDir, bind: &f.bind,
			logLevel: &f.logLevel, logJSON: &f.logJSON, region: &f.region, advertise: &f.advertise,
			httpPort: &f.httpPort, gossipPort: &f.gossipPort}); err != nil {
			return err
		}
		if cl := c.Client; cl != nil {
			if cl.Enabled != nil && !*cl.Enabled {
				return at(cl.Range, "client.enabled = false: this file is not for berth agent")
			}
			s.list("servers", &f.servers, cl.Servers)
			s.str("node-class", &f.nodeClass, cl.NodeClass)
			s.str("node-pool", &f.nodePool, cl.NodePool)
			s.str("network-plugin", &f.networkPlugin, cl.NetworkPlugin)
			s.str("network-routing", &f.networkRouting, cl.NetworkRouting)
			s.str("bridge", &f.bridge, cl.BridgeName)
			if cl.ServerJoin != nil {
				s.list("join", &f.join, cl.ServerJoin.RetryJoin)
			}
			if len(cl.Meta) > 0 && !cmd.Flags().Changed("meta") {
				f.meta = f.meta[:0:0]
				for k, v := range cl.Meta {
					f.meta = append(f.meta, k+"="+v)
				}
			}
			for k, v := range cl.Options {
				if k != "driver.raw_exec.enable" {
					return at(cl.Range, "client.options: unknown option %q (known: driver.raw_exec.enable)", k)
				}
				on, err := strconv.ParseBool(v)
				if err != nil {
					return at(cl.Range, "client.options: %s = %q is not a boolean", k, v)
				}
				s.boolean("raw-exec", &f.rawExec, &on)
			}
		}
		for _, p := range c.Plugins {
			if p.Name != "raw_exec" {
				return at(p.Range, "plugin %q: only raw_exec is configured here (others by -plugin-dir)", p.Name)
			}
			if p.Config != nil {
				s.boolean("raw-exec", &f.rawExec, p.Config.Enabled)
			}
		}
		if cd := c.Containerd; cd != nil {
			s.str("containerd-address", &f.containerdAddr, cd.Address)
			s.str("containerd-namespace", &f.containerdNS, cd.Namespace)
			s.list("insecure-registry", &f.insecure, cd.InsecureRegistries)
		}
	}
	return nil
}
