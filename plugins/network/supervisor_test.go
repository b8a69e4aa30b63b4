package network

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/pluginproc/pluginproctest"
)

// TestSupervisorRelaunchesKilledPlugin kills the plugin with SIGKILL and
// checks that calls fail fast while it is dead, that it comes back as a
// new process configured again with the config last set, and that
// OnRestart ran with a Network that works.
func TestSupervisorRelaunchesKilledPlugin(t *testing.T) {
	var launchable atomic.Bool // false: relaunches fail, holding the plugin dead
	launchable.Store(true)
	var launches atomic.Int64
	type restart struct {
		probe  string
		routes []string
		err    error
	}
	restarted := make(chan restart, 4)
	peers := []Peer{{NodeID: "node-2", Address: "192.168.50.4", Subnet: "10.88.4.0/24"}}
	s := startSupervisor(t, func(c *SupervisorConfig) {
		c.Command = func() *exec.Cmd {
			launches.Add(1)
			if !launchable.Load() {
				return exec.Command("/nonexistent/berth-plugin")
			}
			return pluginCommand()
		}
		c.OnRestart = func(ctx context.Context, n Network) {
			// What the agent does here: reprogram the new process.
			if err := n.Reconcile(ctx, []string{"a1"}); err != nil {
				restarted <- restart{err: err}
				return
			}
			if err := n.SetPeers(ctx, peers); err != nil {
				restarted <- restart{err: err}
				return
			}
			v, err := probe(ctx, n)
			if err != nil {
				restarted <- restart{err: err}
				return
			}
			st, err := n.Installed(ctx)
			if err != nil {
				restarted <- restart{err: err}
				return
			}
			restarted <- restart{probe: v.Get("set_config_calls") + " " + v.Get("bridge") + " " + v.Get("pid"), routes: st.Routes}
		}
	})
	n := s.Network()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The node's config changed after Start: the relaunch must use this one.
	newCfg := testConfig()
	newCfg.Bridge = "berth1"
	if err := n.SetConfig(ctx, newCfg); err != nil {
		t.Fatal(err)
	}
	if _, err := n.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: "a1", Mode: ModeBridge}); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan error, 1)
	go func() {
		_, err := n.CreateNetwork(ctx, &AllocNetworkRequest{AllocID: blockAllocID})
		inFlight <- err
	}()
	oldPid := s.Pid()
	if oldPid == 0 {
		t.Fatal("no plugin pid after Start")
	}
	waitFor(t, 10*time.Second, "the blocking call to reach the plugin", func() bool {
		v, err := probe(ctx, n)
		return err == nil && v.Get("blocking") == "1"
	})

	launchable.Store(false)
	if err := syscall.Kill(oldPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-inFlight:
		if !errors.Is(err, ErrPluginUnavailable) {
			t.Fatalf("call in flight when the plugin died: got %v, want ErrPluginUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call in flight did not return within 10s of the plugin's death")
	}
	waitFor(t, 10*time.Second, "the supervisor to see the plugin die", func() bool { return s.Pid() == 0 })
	for range 3 {
		start := time.Now()
		_, err := n.Installed(ctx)
		if !errors.Is(err, ErrPluginUnavailable) {
			t.Fatalf("call on a dead plugin: got %v, want ErrPluginUnavailable", err)
		}
		if took := time.Since(start); took > 2*time.Second { // generous: a blocked call would wait out the 10s+ timeouts
			t.Fatalf("call on a dead plugin took %v, want fail fast", took)
		}
	}
	waitFor(t, 10*time.Second, "failed relaunch attempts", func() bool { return launches.Load() >= 3 })
	if s.Pid() != 0 {
		t.Fatal("a relaunch with a missing binary left a pid")
	}

	launchable.Store(true)
	waitFor(t, 20*time.Second, "the relaunched plugin", func() bool { p := s.Pid(); return p != 0 && p != oldPid })
	select {
	case got := <-restarted:
		if got.err != nil {
			t.Fatalf("OnRestart: %v", got.err)
		}
		// SetConfig once on the new process, with the config last set; it
		// is the process the supervisor reports.
		if want := "1 berth1 " + strconv.Itoa(s.Pid()); got.probe != want {
			t.Fatalf("OnRestart probe %q, want %q", got.probe, want)
		}
		if diff := cmp.Diff([]string{"10.88.4.0/24"}, got.routes); diff != "" {
			t.Fatalf("routes after OnRestart's SetPeers (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnRestart did not run within 10s of the relaunch")
	}
	if !processGone(oldPid) {
		t.Fatalf("old plugin %d still running", oldPid)
	}
}

func TestSupervisorStartFails(t *testing.T) {
	s := NewSupervisor(SupervisorConfig{
		Name:    "missing",
		Command: func() *exec.Cmd { return exec.Command("/nonexistent/berth-plugin") },
		Logger:  testLogger(t),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err == nil {
		s.Stop()
		t.Fatal("Start succeeded with a missing binary")
	}
	if _, err := s.Network().Installed(ctx); !errors.Is(err, ErrPluginUnavailable) {
		t.Fatalf("got %v, want ErrPluginUnavailable", err)
	}
	s.Stop() // harmless after a failed Start
}

// TestSupervisorStartFailsOnRejectedConfig: a plugin that refuses its
// config is not kept.
func TestSupervisorStartFailsOnRejectedConfig(t *testing.T) {
	cfg := testConfig()
	cfg.NodeSubnet = "not-a-subnet"
	s := NewSupervisor(SupervisorConfig{Name: "mem", Command: pluginCommand, Config: cfg, Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Start(ctx)
	t.Cleanup(s.Stop)
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Start: got %v, want an error wrapping ErrInvalidRequest", err)
	}
	if s.Pid() != 0 {
		t.Fatalf("pid %d kept after a rejected config", s.Pid())
	}
}

// TestDriverBinaryIsRefused launches a driver plugin where a network
// plugin is expected: the handshake cookies differ, so Start fails.
func TestDriverBinaryIsRefused(t *testing.T) {
	if Handshake.MagicCookieValue == driver.Handshake.MagicCookieValue {
		t.Fatal("network and driver plugins share a handshake cookie")
	}
	s := NewSupervisor(SupervisorConfig{
		Name: "driver-by-mistake", Config: testConfig(), Logger: testLogger(t),
		Command: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0])
			cmd.Env = []string{envDriverMode + "=1"}
			return cmd
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err == nil {
		s.Stop()
		t.Fatal("a driver plugin was accepted as a network plugin")
	}
	s.Stop()
}

func TestSupervisorStopKillsPlugin(t *testing.T) {
	s := startSupervisor(t, nil)
	pid := s.Pid()
	s.Stop()
	waitFor(t, 10*time.Second, "the plugin process to end", func() bool { return processGone(pid) })
	if s.Pid() != 0 {
		t.Fatalf("pid %d after Stop", s.Pid())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Network().Installed(ctx); !errors.Is(err, ErrPluginUnavailable) {
		t.Fatalf("after Stop: got %v, want ErrPluginUnavailable", err)
	}
	// No relaunch after Stop (the supervisor polls for death every 100ms).
	time.Sleep(300 * time.Millisecond)
	if s.Pid() != 0 {
		t.Fatal("plugin relaunched after Stop")
	}
}

// TestPluginExitsWithItsParent starts a parent process that launches the
// plugin and exits at once, as a crashed agent; the orphaned plugin must
// notice and exit by itself.
func TestPluginExitsWithItsParent(t *testing.T) {
	pluginproctest.OrphanedPluginExits(t, envParentMode)
}

// TestSupervisorReplacesHungPlugin stops (SIGSTOP) the plugin: it neither
// exits nor answers, so only the pings can tell.
func TestSupervisorReplacesHungPlugin(t *testing.T) {
	restarted := make(chan struct{}, 4)
	s := NewSupervisor(SupervisorConfig{
		Name: "mem", Command: pluginCommand, Config: testConfig(), Logger: testLogger(t),
		MaxBackoff: 200 * time.Millisecond,
		OnRestart:  func(context.Context, Network) { restarted <- struct{}{} },
	})
	s.pingEvery, s.pingTimeout = 200*time.Millisecond, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	oldPid := s.Pid()
	if err := syscall.Kill(oldPid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !processGone(oldPid) {
			_ = syscall.Kill(oldPid, syscall.SIGKILL)
		}
	})
	waitFor(t, 20*time.Second, "a new plugin process", func() bool { p := s.Pid(); return p != 0 && p != oldPid })
	select {
	case <-restarted:
	case <-time.After(10 * time.Second):
		t.Fatal("OnRestart did not run")
	}
	waitFor(t, 5*time.Second, "the hung plugin to be killed", func() bool { return processGone(oldPid) })
	if _, err := s.Network().Installed(ctx); err != nil {
		t.Fatalf("new plugin: %v", err)
	}
}
