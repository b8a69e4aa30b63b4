// Package containerdproc starts and supervises a private containerd: its
// own root, state and socket, a minimal config (no CRI, no snapshotters
// berth does not use) so that it starts in well under a second. `berth dev`
// and the agent use it when no containerd socket is reachable but the
// binary is installed; internal/containerdtest uses it for tests.
package containerdproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
)

// StartTimeout bounds how long Start waits for the socket to answer.
const StartTimeout = 15 * time.Second

// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
const StopGrace = 10 * time.Second

// Options configure a private containerd.
type Options struct {
	// Binary is the containerd executable; default "containerd" from PATH.
	Binary string
	// Root is containerd's persistent directory (content, snapshots,
	// metadata); State its runtime directory (config.toml is written there).
	Root, State string
	// Address is the gRPC socket path; it must be shorter than 108 bytes.
	Address string
	// LogWriter receives containerd's output; nil discards it.
	LogWriter io.Writer
}

// Process is a running private containerd.
type Process struct {
	address string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// disabledPlugins are plugins berth never needs; disabling them makes the
// start fast and quiet. Names unknown to the installed version are ignored.
var disabledPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
	"io.containerd.nri.v1.nri",
	"io.containerd.sandbox.controller.v1.shim",
}

// Config renders the config.toml (version 2) for o.
func Config(o Options) string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	names := make([]string, len(disabledPlugins))
	for i, n := range disabledPlugins {
		names[i] = q(n)
	}
	return strings.Join([]string{
		"version = 2",
		"root = " + q(o.Root),
		"state = " + q(o.State),
		"disabled_plugins = [" + strings.Join(names, ", ") + "]",
		"",
		"[grpc]",
		"  address = " + q(o.Address),
		"",
		"[debug]",
		`  address = ""`,
		`  level = "info"`,
		"",
		"[metrics]",
		`  address = ""`,
		"",
	}, "\n")
}

// Start writes State/config.toml, launches containerd and waits (at most
// StartTimeout, or until ctx ends) until its socket answers a Version call.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Root == "" || o.State == "" || o.Address == "" {
		return nil, errors.New("containerdproc: Root, State and Address are required")
	}
	if len(o.Address) >= 108 {
		return nil, fmt.Errorf("containerdproc: socket path %q is too long for a unix socket", o.Address)
	}
	bin := o.Binary
	if bin == "" {
		bin = "containerd"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("containerdproc: find %s: %w", bin, err)
	}
	for _, d := range []string{o.Root, o.State, filepath.Dir(o.Address)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("containerdproc: %w", err)
		}
	}
	cfgPath := filepath.Join(o.State, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(Config(o)), 0o600); err != nil {
		return nil, fmt.Errorf("containerdproc: write config: %w", err)
	}
	// A socket left by a killed containerd would make the start fail.
	if !Reachable(ctx, o.Address) {
		_ = os.Remove(o.Address)
	} else {
		return nil, fmt.Errorf("containerdproc: a containerd already answers on %s", o.Address)
	}

	out := o.LogWriter
	if out == nil {
		out = io.Discard
	}
	cmd := exec.Command(path, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a terminal's Ctrl-C goes to us, and we stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("containerdproc: start %s: %w", path, err)
	}
	p := &Process{address: o.Address, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	deadline := time.NewTimer(StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if Reachable(ctx, o.Address) {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("containerdproc: containerd exited during start: %v", p.waitErr)
		case <-ctx.Done():
			_ = p.Stop()
			return nil, fmt.Errorf("containerdproc: start: %w", ctx.Err())
		case <-deadline.C:
			_ = p.Stop()
			return nil, fmt.Errorf("containerdproc: containerd did not answer on %s within %s", o.Address, StartTimeout)
		case <-tick.C:
		}
	}
}

// Address is the socket the process serves.
func (p *Process) Address() string { return p.address }

// Pid is containerd's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once containerd has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM, then SIGKILL after StopGrace, and waits for the
// exit. Task shims keep running; a later Start on the same Root and State
// finds them again. Calling Stop again returns the first result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			return
		case <-time.After(StopGrace):
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.stopErr = fmt.Errorf("containerdproc: containerd (pid %d) did not exit after SIGKILL", p.cmd.Process.Pid)
		}
	})
	return p.stopErr
}

// Reachable reports whether a containerd answers a Version call on
// address (a unix socket path) within about two seconds.
func Reachable(ctx context.Context, address string) bool {
	fi, err := os.Stat(address)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := containerd.New(address, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.Version(ctx)
	return err == nil
}
