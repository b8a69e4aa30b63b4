package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startNode launches the node's berth process inside its namespace,
// detached (its own session, output to its log file) so that it outlives
// the command that started it, and records its pid.
func (l *Lab) startNode(n *Node) error {
	if pidAlive(n.Pid) && l.isNodeProcess(n, n.Pid) {
		return fmt.Errorf("start %s: already running (pid %d)", n.Name, n.Pid)
	}
	logf, err := os.OpenFile(n.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==> lab: starting %s at %s\n", n.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(l.Binary, n.Role, "-config", n.ConfigFile())
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "BERTH_LAB_NODE="+n.Name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// os/exec forks from the calling thread, so the child is born in the
	// namespace the thread was moved into.
	if err := inNetns(nsPath(n.Netns), cmd.Start); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	// Reap it if it dies while this process lives (tests); a later
	// `berth lab` invocation is not its parent and init reaps it.
	go func() { _ = cmd.Wait() }()
	n.Pid = cmd.Process.Pid
	l.logger.Info("lab node started", "node", n.Name, "pid", n.Pid, "addr", n.Addr)
	return l.save()
}

// pidAlive reports whether pid is a live (not zombie) process.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

// isNodeProcess guards against a recycled pid: the process must run the
// node's config file.
func (l *Lab) isNodeProcess(n *Node, pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte(n.ConfigFile()))
}

// Running reports whether the node's berth process is alive.
func (l *Lab) Running(n *Node) bool { return pidAlive(n.Pid) && l.isNodeProcess(n, n.Pid) }

// waitGone waits (at most timeout) for pid to exit.
func waitGone(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for pidAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still alive after %s", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Kill SIGKILLs the node's berth process (tasks it started keep running,
// as when a machine's agent crashes) and waits for it to be gone.
func (l *Lab) Kill(name string) error {
	n, err := l.Node(name)
	if err != nil {
		return err
	}
	if !l.Running(n) {
		return fmt.Errorf("kill %s: not running", name)
	}
	if err := syscall.Kill(n.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	if err := waitGone(n.Pid, 10*time.Second); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	l.logger.Info("lab node killed", "node", name, "pid", n.Pid)
	return nil
}

// Start restarts a stopped node's process on the same data dir.
func (l *Lab) Start(name string) error {
	n, err := l.Node(name)
	if err != nil {
		return err
	}
	return l.startNode(n)
}

// pidsInNetns lists every process whose network namespace is the one
// bind-mounted at path.
func pidsInNetns(path string) ([]int, error) {
	ino, err := netnsInode(path)
	if err != nil {
		return nil, err
	}
	want := "net:[" + strconv.FormatUint(ino, 10) + "]"
	return scanProcs(func(pid string) bool {
		link, err := os.Readlink(filepath.Join("/proc", pid, "ns", "net"))
		return err == nil && link == want
	})
}

// pidsWithArg lists processes whose command line contains s.
func pidsWithArg(s string) ([]int, error) {
	return scanProcs(func(pid string) bool {
		b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		return err == nil && bytes.Contains(b, []byte(s))
	})
}

func scanProcs(match func(pid string) bool) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := strconv.Itoa(os.Getpid())
	var out []int
	for _, e := range ents {
		name := e.Name()
		if name == self || strings.TrimLeft(name, "0123456789") != "" {
			continue
		}
		if match(name) {
			pid, _ := strconv.Atoi(name)
			out = append(out, pid)
		}
	}
	return out, nil
}

// killAll SIGKILLs pids and waits for them to go.
func killAll(pids []int) error {
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	var errs []error
	for _, p := range pids {
		if err := waitGone(p, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Exec runs argv inside the node's namespace with the given stdio and
// returns its exit code.
func (l *Lab) Exec(name string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	n, err := l.Node(name)
	if err != nil {
		return -1, err
	}
	if len(argv) == 0 {
		return -1, errors.New("exec: no command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "BERTH_LAB_NODE="+n.Name, "BERTH_ADDR=http://"+n.HTTPAddr())
	if err := inNetns(nsPath(n.Netns), cmd.Start); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", name, err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", name, err)
	}
	return 0, nil
}

// Processes lists the pids of every process in the node's network
// namespace (its berth process, plugins, raw_exec tasks), with their
// command lines.
func (l *Lab) Processes(name string) (map[int]string, error) {
	n, err := l.Node(name)
	if err != nil {
		return nil, err
	}
	pids, err := pidsInNetns(nsPath(n.Netns))
	if err != nil {
		return nil, fmt.Errorf("processes of %s: %w", name, err)
	}
	out := make(map[int]string, len(pids))
	for _, p := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
		if err != nil || !pidAlive(p) {
			continue // exited meanwhile
		}
		out[p] = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out, nil
}
