package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/agent/containerdproc"
)

// ErrExists is returned by Up when the lab's state directory already
// holds a lab.
var ErrExists = errors.New("lab already exists")

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = "lab"
	}
	if !validName.MatchString(o.Name) {
		return fmt.Errorf("lab name %q: use 1 to 8 characters a-z, 0-9", o.Name)
	}
	if o.Servers == 0 {
		o.Servers = 3
	}
	if o.Agents < 0 || o.Servers < 1 || o.Servers > 89 || o.Agents > 99 {
		return fmt.Errorf("lab of %d servers and %d agents: use 1-89 servers and 0-99 agents", o.Servers, o.Agents)
	}
	if o.Dir == "" {
		o.Dir = Dir(o.Name)
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the berth binary: %w", err)
		}
		o.Binary = exe
	}
	abs, err := filepath.Abs(o.Binary)
	if err != nil {
		return fmt.Errorf("berth binary: %w", err)
	}
	o.Binary = abs
	if o.Containerd == "" {
		o.Containerd = "auto"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	return nil
}

// Up creates a lab and waits until it has a leader and every agent is
// ready. On failure it tears down what it made.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab up: network namespaces need root")
	}
	if _, err := os.Stat(stateFile(o.Dir)); err == nil {
		return nil, fmt.Errorf("lab up %s in %s: %w (run `berth lab down -name %s`)", o.Name, o.Dir, ErrExists, o.Name)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	l := &Lab{logger: orDiscard(o.Logger).With("component", "lab", "lab", o.Name)}
	l.State = State{Name: o.Name, Dir: o.Dir, Binary: o.Binary, Bridge: "bl-" + o.Name,
		Tuning: o.Tuning, LogLevel: o.LogLevel, InsecureRegistries: o.InsecureRegistries, Created: time.Now().UTC()}
	if err := l.save(); err != nil {
		return nil, err
	}
	if err := l.build(ctx, o); err != nil {
		if derr := l.Down(context.Background()); derr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
		}
		return nil, fmt.Errorf("lab up %s: %w", o.Name, err)
	}
	return l, nil
}

func (l *Lab) build(ctx context.Context, o Options) error {
	subnet, err := pickSubnet(o.Subnet)
	if err != nil {
		return err
	}
	l.Subnet = subnet.String()
	base := subnet.IP.To4()
	at := func(host byte) net.IP { return net.IPv4(base[0], base[1], base[2], host).To4() }
	mask := subnet.Mask
	l.BridgeAddr = at(1).String()
	for i := 1; i <= o.Servers; i++ {
		l.addNode(RoleServer, i, at(byte(10+i)))
	}
	for i := 1; i <= o.Agents; i++ {
		l.addNode(RoleAgent, i, at(byte(100+i)))
	}
	if err := l.save(); err != nil {
		return err
	}
	if err := ensureBridge(l.Bridge, &net.IPNet{IP: at(1), Mask: mask}); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if err := createNetns(n.Netns); err != nil {
			return err
		}
		if err := plugNode(l.Bridge, n.HostVeth, n.Netns, &net.IPNet{IP: net.ParseIP(n.Addr).To4(), Mask: mask}); err != nil {
			return err
		}
		if err := os.MkdirAll(n.DataDir(), 0o755); err != nil {
			return fmt.Errorf("node dir: %w", err)
		}
	}
	if o.Agents > 0 {
		if err := l.startContainerd(ctx, o.Containerd); err != nil {
			return err
		}
	}
	for _, n := range l.Nodes {
		if err := l.writeConfig(n); err != nil {
			return err
		}
		if err := l.startNode(n); err != nil {
			return err
		}
	}
	return l.WaitReady(ctx, o.ReadyTimeout)
}

func (l *Lab) addNode(role string, i int, ip net.IP) {
	name := role + "-" + strconv.Itoa(i)
	n := &Node{Name: name, Role: role, Index: i, Addr: ip.String(),
		Netns: "berthlab-" + l.Name + "-" + name, HostVeth: fmt.Sprintf("bl%s%c%d", l.Name, role[0], i),
		Dir: filepath.Join(l.Dir, name)}
	if role == RoleAgent {
		n.ContainerdNamespace = "berthlab-" + name
	}
	l.Nodes = append(l.Nodes, n)
}

// FreeSubnet is the subnet Up picks when none is given.
func FreeSubnet() (string, error) {
	n, err := pickSubnet("")
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// pickSubnet parses want, or finds the first 10.77.<n>.0/24 that no host
// address falls in (another lab's bridge, say).
func pickSubnet(want string) (*net.IPNet, error) {
	if want != "" {
		_, n, err := net.ParseCIDR(want)
		if err != nil || n.IP.To4() == nil {
			return nil, fmt.Errorf("lab subnet %q: want an IPv4 CIDR like 10.77.3.0/24", want)
		}
		if ones, _ := n.Mask.Size(); ones > 24 {
			return nil, fmt.Errorf("lab subnet %q: want a /24 or larger", want)
		}
		return n, nil
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for i := 1; i < 255; i++ {
		cand := &net.IPNet{IP: net.IPv4(10, 77, byte(i), 0).To4(), Mask: net.CIDRMask(24, 32)}
		used := false
		for _, a := range addrs {
			if cand.Contains(a.IP) || a.IPNet.Contains(cand.IP) {
				used = true
				break
			}
		}
		if !used {
			return cand, nil
		}
	}
	return nil, errors.New("no free 10.77.x.0/24 for the lab")
}

func (l *Lab) startContainerd(ctx context.Context, mode string) error {
	dir := filepath.Join(l.Dir, "containerd")
	// Agents are always pointed at the lab's socket, never at the
	// machine's containerd: without a lab containerd their containerd
	// drivers are simply unhealthy.
	l.ContainerdAddress = filepath.Join(dir, "c.sock")
	if mode == "no" {
		return nil
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		if mode == "yes" {
			return fmt.Errorf("containerd: %w", err)
		}
		l.logger.Warn("containerd is not installed: agents run raw_exec only")
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(l.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("containerd log: %w", err)
	}
	defer logf.Close() // containerd holds its own copy of the descriptor
	p, err := containerdproc.Start(ctx, containerdproc.Options{
		Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
		Address: l.ContainerdAddress, LogWriter: logf,
	})
	if err != nil {
		return fmt.Errorf("lab containerd: %w", err)
	}
	l.ContainerdAddress, l.ContainerdPid = p.Address(), p.Pid()
	return l.save()
}

// writeConfig renders the node's config file from the shared templates.
func (l *Lab) writeConfig(n *Node) error {
	var ips []string
	for _, s := range l.NodesOf(RoleServer) {
		ips = append(ips, s.Addr)
	}
	gossip, httpAddrs := ServerAddrs(ips)
	d := ConfigData{Role: n.Role, Node: n.Name, DataDir: n.DataDir(), Addr: n.Addr, LogLevel: l.LogLevel,
		BootstrapExpect: len(ips), Join: gossip, Servers: httpAddrs, RawExec: true,
		ContainerdAddress: l.ContainerdAddress, ContainerdNamespace: n.ContainerdNamespace,
		InsecureRegistries: l.InsecureRegistries, NodeClass: "lab", Tuning: l.Tuning.Strings()}
	b, err := RenderConfig(d)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.ConfigFile(), b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", n.ConfigFile(), err)
	}
	return nil
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// getJSON GETs http://addr+path into v.
func getJSON(ctx context.Context, addr, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s%s: %s", addr, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Leader asks the server at addr (host:port) which server leads (the
// leader's Raft address), "" when it knows none.
func Leader(ctx context.Context, addr string) (string, error) {
	var leader string
	if err := getJSON(ctx, addr, "/v1/status/leader", &leader); err != nil {
		return "", err
	}
	return leader, nil
}

// ReadyAgents counts the nodes the servers report ready.
func (l *Lab) ReadyAgents(ctx context.Context) (int, error) {
	var nodes []struct{ Status string }
	var err error
	for _, addr := range l.ServerHTTPAddrs() {
		if err = getJSON(ctx, addr, "/v1/nodes", &nodes); err == nil {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	ready := 0
	for _, n := range nodes {
		if n.Status == "ready" {
			ready++
		}
	}
	return ready, nil
}

// WaitReady waits until every running server agrees on a leader and all
// agents are ready.
func (l *Lab) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = l.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab not ready within %s: %w", timeout, last)
		case <-tick.C:
		}
	}
}

func (l *Lab) ready(ctx context.Context) error {
	for _, n := range l.Nodes {
		if !l.Running(n) {
			return fmt.Errorf("%s is not running (see %s)", n.Name, n.LogFile())
		}
	}
	var leader string
	for _, s := range l.NodesOf(RoleServer) {
		got, err := Leader(ctx, s.HTTPAddr())
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if got == "" || (leader != "" && got != leader) {
			return fmt.Errorf("%s: no agreed leader yet", s.Name)
		}
		leader = got
	}
	want := len(l.NodesOf(RoleAgent))
	got, err := l.ReadyAgents(ctx)
	if err != nil {
		return err
	}
	if got < want {
		return fmt.Errorf("%d of %d agents ready", got, want)
	}
	return nil
}
