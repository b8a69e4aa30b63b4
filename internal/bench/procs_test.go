package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

// buildBerth compiles the berth binary into a temp dir once per benchmark.
func buildBerth(tb testing.TB) string {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(tb.TempDir(), "berth")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/berth-dev/berth")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		tb.Fatalf("go build berth: %v\n%s", err, out.String())
	}
	tb.Logf("built berth in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// freePorts returns n distinct loopback ports that were free for TCP (and
// UDP, which gossip also uses) a moment ago.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	var held []func()
	defer func() {
		for _, c := range held {
			c()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10*n {
			tb.Fatalf("could not find %d free ports", n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, func() { l.Close(); u.Close() })
		ports = append(ports, port)
	}
	return ports
}

// proc is one `berth server` process and what it needs to restart.
type proc struct {
	name                         string
	dir                          string
	log                          string
	httpPort, raftPort, gossPort int
	cmd                          *exec.Cmd
	done                         chan struct{} // closed once the process is reaped
}

func (p *proc) url() string      { return fmt.Sprintf("http://127.0.0.1:%d", p.httpPort) }
func (p *proc) raftAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.raftPort) }
func (p *proc) gossAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.gossPort) }

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// procCluster is n real server processes on loopback.
type procCluster struct {
	tb     testing.TB
	bin    string
	procs  []*proc
	client *http.Client
}

// newProcCluster starts n servers with bootstrap-expect n, each joining
// the others, and waits until they agree on a leader. Processes are
// SIGKILLed by tb.Cleanup (and by the kernel if the test binary dies).
func newProcCluster(tb testing.TB, bin string, n int) *procCluster {
	tb.Helper()
	c := &procCluster{tb: tb, bin: bin, client: newClient(8)}
	base := tb.TempDir()
	ports := freePorts(tb, 3*n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("server-%d", i+1)
		c.procs = append(c.procs, &proc{
			name:     name,
			dir:      filepath.Join(base, name),
			log:      filepath.Join(base, name+".log"),
			httpPort: ports[3*i], raftPort: ports[3*i+1], gossPort: ports[3*i+2],
		})
	}
	tb.Cleanup(c.close)
	for i := range c.procs {
		c.start(i)
	}
	return c
}

// start launches server i on its data dir and ports; its output is
// appended to its log file.
func (c *procCluster) start(i int) {
	c.tb.Helper()
	p := c.procs[i]
	if p.running() {
		c.tb.Fatalf("%s is already running", p.name)
	}
	args := []string{"server",
		"-node", p.name,
		"-data-dir", p.dir,
		"-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(p.httpPort),
		"-raft-port", strconv.Itoa(p.raftPort),
		"-gossip-port", strconv.Itoa(p.gossPort),
		"-bootstrap-expect", strconv.Itoa(len(c.procs)),
		"-log-level", "warn",
	}
	for j, o := range c.procs {
		if j != i {
			args = append(args, "-join", o.gossAddr())
		}
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.tb.Fatalf("open log: %v", err)
	}
	fmt.Fprintf(logf, "=== start %s %v\n", time.Now().Format(time.RFC3339Nano), args)
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.tb.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(p.done)
}

// kill sends SIGKILL to server i and returns at once; reap waits for it.
func (c *procCluster) kill(i int) {
	p := c.procs[i]
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// reap waits for server i's process to be gone.
func (c *procCluster) reap(i int) {
	p := c.procs[i]
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		c.tb.Fatalf("%s did not exit after SIGKILL", p.name)
	}
}

func (c *procCluster) close() {
	for i := range c.procs {
		c.kill(i)
	}
	for _, p := range c.procs {
		if p.cmd != nil {
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
			}
		}
	}
	if c.tb.Failed() {
		for _, p := range c.procs {
			c.tb.Logf("--- %s log tail:\n%s", p.name, tail(p.log, 4<<10))
		}
	}
}

// byRaftAddr maps a Raft address to a server index, -1 if none.
func (c *procCluster) byRaftAddr(addr string) int {
	for i, p := range c.procs {
		if p.raftAddr() == addr {
			return i
		}
	}
	return -1
}

// agreedLeader returns the index of the server every running server
// names as leader, or an error saying why there is none yet.
func (c *procCluster) agreedLeader() (int, error) {
	leader := ""
	for _, p := range c.procs {
		if !p.running() {
			continue
		}
		var addr string
		if err := getJSON(c.client, p.url(), "/v1/status/leader", time.Second, &addr); err != nil {
			return -1, err
		}
		if addr == "" {
			return -1, fmt.Errorf("%s knows no leader", p.name)
		}
		if leader != "" && addr != leader {
			return -1, fmt.Errorf("servers disagree: %s vs %s", leader, addr)
		}
		leader = addr
	}
	i := c.byRaftAddr(leader)
	if i < 0 {
		return -1, fmt.Errorf("leader %q is none of ours", leader)
	}
	if !c.procs[i].running() {
		return -1, fmt.Errorf("leader %s is not running", c.procs[i].name)
	}
	return i, nil
}

// waitStable waits until every server runs, all name the same leader,
// the leader's Raft configuration holds every server as a voter, every
// server sees every other alive in gossip and has applied the leader's
// commit index. It returns the leader's index.
func (c *procCluster) waitStable(timeout time.Duration) int {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		i, err := c.agreedLeader()
		if err == nil {
			err = c.checkVoters(i)
		}
		if err == nil {
			err = c.checkMembers()
		}
		if err == nil {
			err = c.checkCaughtUp(i)
		}
		if err == nil {
			for _, p := range c.procs {
				if !p.running() {
					err = fmt.Errorf("%s exited", p.name)
				}
			}
		}
		if err == nil {
			return i
		}
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	c.tb.Fatalf("cluster not stable after %s: %v", timeout, last)
	return -1
}

// checkVoters asks the leader for its Raft configuration and checks that
// every server is in it as a voter.
func (c *procCluster) checkVoters(leader int) error {
	var cfg structs.RaftConfiguration
	if err := getJSON(c.client, c.procs[leader].url(), "/v1/operator/raft/configuration", time.Second, &cfg); err != nil {
		return err
	}
	voters := map[string]bool{}
	for _, s := range cfg.Servers {
		if s.Voter {
			voters[s.Address] = true
		}
	}
	for _, p := range c.procs {
		if !voters[p.raftAddr()] {
			return fmt.Errorf("%s (%s) is not a voter in %d-server configuration", p.name, p.raftAddr(), len(cfg.Servers))
		}
	}
	if len(voters) != len(c.procs) {
		return fmt.Errorf("%d voters, want %d", len(voters), len(c.procs))
	}
	return nil
}

// checkMembers checks that every server sees every server alive in gossip.
func (c *procCluster) checkMembers() error {
	for _, p := range c.procs {
		var out structs.ServerMembers
		if err := getJSON(c.client, p.url(), "/v1/agent/members", time.Second, &out); err != nil {
			return err
		}
		alive := 0
		for _, m := range out.Members {
			if m.Status == "alive" {
				alive++
			}
		}
		if alive != len(c.procs) {
			return fmt.Errorf("%s sees %d of %d servers alive", p.name, alive, len(c.procs))
		}
	}
	return nil
}

// checkCaughtUp checks that every server has applied what the leader had
// committed when asked.
func (c *procCluster) checkCaughtUp(leader int) error {
	commit, err := c.raftStat(leader, "commit_index")
	if err != nil {
		return err
	}
	for i, p := range c.procs {
		applied, err := c.raftStat(i, "applied_index")
		if err != nil {
			return err
		}
		if applied < commit {
			return fmt.Errorf("%s applied %d of the leader's %d", p.name, applied, commit)
		}
	}
	return nil
}

// raftStat reads one numeric Raft statistic from server i's /v1/agent/self.
func (c *procCluster) raftStat(i int, key string) (uint64, error) {
	var self structs.AgentSelf
	if err := getJSON(c.client, c.procs[i].url(), "/v1/agent/self", time.Second, &self); err != nil {
		return 0, err
	}
	v, ok := self.Stats["raft"][key]
	if !ok {
		return 0, fmt.Errorf("%s: no raft stat %q", c.procs[i].name, key)
	}
	return strconv.ParseUint(v, 10, 64)
}

// tail returns the last n bytes of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return err.Error()
	}
	return string(buf)
}
