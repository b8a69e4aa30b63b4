// Package lab builds multi-node berth clusters on one machine: every node
// is a network namespace with its own address on a lab bridge, running a
// real `berth server` or `berth agent` process with its own data dir and
// config file (rendered from the templates under lab/config, the same
// ones the Vagrant lab renders). Agents share one private containerd,
// each in its own containerd namespace. A lab outlives the process that
// made it: its state (nodes, pids, addresses) is a JSON file in its
// directory, so `berth lab` commands and tests can act on it later.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Roles of lab nodes.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// DefaultRoot holds one directory per lab unless BERTH_LAB_DIR says
// otherwise.
const DefaultRoot = "/var/lib/berth-lab"

// Ports every node listens on inside its own namespace.
const (
	ServerHTTPPort   = 4646
	ServerRaftPort   = 4647
	ServerGossipPort = 4648
	AgentHTTPPort    = 4656
	AgentGossipPort  = 4658
)

// ErrNoLab is returned by Load when the lab's state file does not exist.
var ErrNoLab = errors.New("no such lab")

// ErrUnknownNode is returned for a node name the lab does not have.
var ErrUnknownNode = errors.New("unknown lab node")

// validName keeps the derived interface names within Linux's 15 bytes:
// bridge "bl-<name>", host veths "bl<name><s|a><index>".
var validName = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// Tuning are the cluster timings written into the nodes' config files;
// labs for tests shorten them.
type Tuning struct {
	// MinHeartbeatTTL and HeartbeatGrace decide how soon a silent agent is
	// marked down (TTL up to 2×MinHeartbeatTTL, plus the grace).
	MinHeartbeatTTL time.Duration
	HeartbeatGrace  time.Duration
	// FailoverHeartbeatTTL is the TTL a new leader gives every node.
	FailoverHeartbeatTTL time.Duration
}

// Options configure Up.
type Options struct {
	Name    string // [a-z0-9]{1,8}; default "lab"
	Servers int    // default 3
	Agents  int    // default 2
	// Dir is the lab's state directory; default $BERTH_LAB_DIR/<name> or
	// /var/lib/berth-lab/<name>.
	Dir string
	// Binary is the berth executable the nodes run; default this one.
	Binary string
	// Subnet is the lab's IPv4 /24 (e.g. "10.77.3.0/24"); default the
	// first 10.77.<n>.0/24 with no host address in it.
	Subnet string
	// Containerd starts the shared private containerd for the agents:
	// "auto" (default: when the binary is installed), "yes" or "no".
	Containerd string
	// InsecureRegistries are registries (host:port) the agents pull from
	// over plain HTTP, e.g. one served on the bridge address.
	InsecureRegistries []string
	Tuning             Tuning
	LogLevel           string // default "info"
	// ReadyTimeout bounds the wait for a leader and every agent ready.
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

// Node is one lab member as recorded in the state file.
type Node struct {
	Name     string `json:"name"` // server-1, agent-2
	Role     string `json:"role"`
	Index    int    `json:"index"`
	Addr     string `json:"addr"`  // lab address, no prefix
	Netns    string `json:"netns"` // name under /var/run/netns
	HostVeth string `json:"host_veth"`
	Dir      string `json:"dir"` // data_dir, config and log live here
	Pid      int    `json:"pid"`
	// Partitioned is set while partition rules are installed in its
	// namespace.
	Partitioned bool `json:"partitioned,omitempty"`
	// ContainerdNamespace is an agent's namespace in the lab containerd.
	ContainerdNamespace string `json:"containerd_namespace,omitempty"`
}

// ConfigFile is the node's rendered config; LogFile its stdout+stderr.
func (n *Node) ConfigFile() string { return filepath.Join(n.Dir, n.Role+".hcl") }

// LogFile receives the node process's output.
func (n *Node) LogFile() string { return filepath.Join(n.Dir, n.Role+".log") }

// DataDir is the node's berth data dir.
func (n *Node) DataDir() string { return filepath.Join(n.Dir, "data") }

// HTTPAddr is host:port of the node's HTTP API.
func (n *Node) HTTPAddr() string {
	port := ServerHTTPPort
	if n.Role == RoleAgent {
		port = AgentHTTPPort
	}
	return n.Addr + ":" + strconv.Itoa(port)
}

// State is the lab's state file, lab.json in its directory.
type State struct {
	Name       string `json:"name"`
	Dir        string `json:"dir"`
	Binary     string `json:"binary"`
	Subnet     string `json:"subnet"`
	Bridge     string `json:"bridge"`
	BridgeAddr string `json:"bridge_addr"` // the host's address in the lab
	// ContainerdAddress and ContainerdPid describe the shared containerd
	// (empty/0 when the lab runs without one).
	ContainerdAddress  string    `json:"containerd_address,omitempty"`
	ContainerdPid      int       `json:"containerd_pid,omitempty"`
	InsecureRegistries []string  `json:"insecure_registries,omitempty"`
	Tuning             Tuning    `json:"tuning"`
	LogLevel           string    `json:"log_level"`
	Created            time.Time `json:"created"`
	Nodes              []*Node   `json:"nodes"`
}

// Lab is a handle on a lab's state; its methods act on the machine and
// keep the state file current.
type Lab struct {
	State
	logger *slog.Logger
}

// Dir resolves the state directory of the lab called name.
func Dir(name string) string {
	root := os.Getenv("BERTH_LAB_DIR")
	if root == "" {
		root = DefaultRoot
	}
	return filepath.Join(root, name)
}

func stateFile(dir string) string { return filepath.Join(dir, "lab.json") }

// Load opens the lab whose state directory is dir.
func Load(dir string, logger *slog.Logger) (*Lab, error) {
	b, err := os.ReadFile(stateFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load lab in %s: %w", dir, ErrNoLab)
	}
	if err != nil {
		return nil, fmt.Errorf("load lab: %w", err)
	}
	l := &Lab{logger: orDiscard(logger)}
	if err := json.Unmarshal(b, &l.State); err != nil {
		return nil, fmt.Errorf("load lab: parse %s: %w", stateFile(dir), err)
	}
	return l, nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(&l.State, "", "  ")
	if err != nil {
		return fmt.Errorf("save lab state: %w", err)
	}
	tmp := stateFile(l.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save lab state: %w", err)
	}
	if err := os.Rename(tmp, stateFile(l.Dir)); err != nil {
		return fmt.Errorf("save lab state: %w", err)
	}
	return nil
}

// Node returns the node called name.
func (l *Lab) Node(name string) (*Node, error) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w %q in lab %s", ErrUnknownNode, name, l.Name)
}

// NodesOf returns the nodes of a role in index order.
func (l *Lab) NodesOf(role string) []*Node {
	var out []*Node
	for _, n := range l.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// ServerHTTPAddrs are host:port of every server's HTTP API.
func (l *Lab) ServerHTTPAddrs() []string {
	var out []string
	for _, n := range l.NodesOf(RoleServer) {
		out = append(out, n.HTTPAddr())
	}
	return out
}

// Address is the URL to point the CLI at (BERTH_ADDR): server-1's API.
func (l *Lab) Address() string {
	servers := l.NodesOf(RoleServer)
	if len(servers) == 0 {
		return ""
	}
	return "http://" + servers[0].HTTPAddr()
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
