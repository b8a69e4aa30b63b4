package lab

import (
	"bytes"
	"embed"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// templates are the node config files: the single source of truth for
// the netns lab and the Vagrant provisioning (`berth lab render-config`).
//
//go:embed config/*.hcl.tmpl
var templates embed.FS

// Ports are a node's listening ports as written into its config.
type Ports struct{ HTTP, RPC, Serf int }

// ConfigData fills a node config template.
type ConfigData struct {
	Role       string // RoleServer or RoleAgent
	Node       string
	Datacenter string
	DataDir    string
	Addr       string // bind and advertise address
	LogLevel   string
	Ports      Ports
	// BootstrapExpect is the number of servers (servers only).
	BootstrapExpect int
	// Join are the servers' gossip addresses (host:port).
	Join []string
	// Servers are the servers' HTTP addresses (agents only).
	Servers   []string
	NodeClass string
	RawExec   bool
	// ContainerdAddress and ContainerdNamespace: agents only; empty
	// address leaves the block out (the agent's default socket).
	ContainerdAddress, ContainerdNamespace string
	// InsecureRegistries are pulled from over plain HTTP (agents only).
	InsecureRegistries []string
	Tuning             TuningStrings
}

// TuningStrings are Tuning as config-file durations ("" leaves a key out).
type TuningStrings struct {
	MinHeartbeatTTL, HeartbeatGrace, FailoverHeartbeatTTL string
}

func durationString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// Strings renders t for a template.
func (t Tuning) Strings() TuningStrings {
	return TuningStrings{
		MinHeartbeatTTL:      durationString(t.MinHeartbeatTTL),
		HeartbeatGrace:       durationString(t.HeartbeatGrace),
		FailoverHeartbeatTTL: durationString(t.FailoverHeartbeatTTL),
	}
}

var funcs = template.FuncMap{
	// HCL string literals accept Go's escapes for what configs contain.
	"quote": strconv.Quote,
	"list": func(vals []string) string {
		q := make([]string, len(vals))
		for i, v := range vals {
			q[i] = strconv.Quote(v)
		}
		return "[" + strings.Join(q, ", ") + "]"
	},
}

// RenderConfig renders the config file of one node.
func RenderConfig(d ConfigData) ([]byte, error) {
	if d.Role != RoleServer && d.Role != RoleAgent {
		return nil, fmt.Errorf("render config: unknown role %q", d.Role)
	}
	if net.ParseIP(d.Addr) == nil {
		return nil, fmt.Errorf("render config: address %q is not an IP address", d.Addr)
	}
	if d.Datacenter == "" {
		d.Datacenter = "dc1"
	}
	if d.LogLevel == "" {
		d.LogLevel = "info"
	}
	if d.Ports == (Ports{}) {
		d.Ports = DefaultPorts(d.Role)
	}
	name := d.Role + ".hcl.tmpl"
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").ParseFS(templates, "config/"+name)
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render config %s: %w", d.Node, err)
	}
	return buf.Bytes(), nil
}

// DefaultPorts are the ports of a role.
func DefaultPorts(role string) Ports {
	if role == RoleAgent {
		return Ports{HTTP: AgentHTTPPort, Serf: AgentGossipPort}
	}
	return Ports{HTTP: ServerHTTPPort, RPC: ServerRaftPort, Serf: ServerGossipPort}
}

// ServerAddrs turns server IPs into their gossip and HTTP addresses.
func ServerAddrs(ips []string) (gossip, http []string) {
	for _, ip := range ips {
		gossip = append(gossip, net.JoinHostPort(ip, strconv.Itoa(ServerGossipPort)))
		http = append(http, net.JoinHostPort(ip, strconv.Itoa(ServerHTTPPort)))
	}
	return gossip, http
}
