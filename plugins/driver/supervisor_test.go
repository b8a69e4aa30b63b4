package driver

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/plugins/internal/pluginproc/pluginproctest"
)

// TestSupervisorRelaunchesKilledPlugin kills the plugin with SIGKILL and
// checks that calls fail fast while it is dead, that it comes back as a
// new process configured again, and that OnRestart ran with a Driver that
// works.
func TestSupervisorRelaunchesKilledPlugin(t *testing.T) {
	var launchable atomic.Bool // false: relaunches fail, holding the plugin dead
	launchable.Store(true)
	var launches counter
	restarted := make(chan string, 4)
	s := startSupervisor(t, func(c *SupervisorConfig) {
		c.Command = func() *exec.Cmd {
			launches.inc()
			if !launchable.Load() {
				return exec.Command("/nonexistent/berth-plugin")
			}
			return pluginCommand()
		}
		c.OnRestart = func(ctx context.Context, d Driver) {
			// What the agent does here: talk to the new process.
			fps, err := d.Fingerprint(ctx)
			if err != nil {
				restarted <- "fingerprint: " + err.Error()
				return
			}
			restarted <- fps[0].Attributes["set_config_calls"]
		}
	})
	d := s.Driver()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.StartTask(ctx, testTaskConfig("a1/web")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.StartTask(ctx, testTaskConfig("a1/blocks")); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan error, 1)
	go func() { _, err := d.WaitTask(ctx, "a1/blocks"); inFlight <- err }()
	oldPid := s.Pid()
	if oldPid == 0 {
		t.Fatal("no plugin pid after Start")
	}
	waitFor(t, 10*time.Second, "WaitTask to reach the plugin", func() bool {
		st, err := d.InspectTask(ctx, "a1/blocks")
		return err == nil && st.Attributes["waiting"] == "true"
	})

	launchable.Store(false)
	if err := syscall.Kill(oldPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-inFlight:
		if !errors.Is(err, ErrPluginUnavailable) {
			t.Fatalf("WaitTask in flight when the plugin died: got %v, want ErrPluginUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitTask in flight did not return within 10s of the plugin's death")
	}
	// Calls on the dead plugin fail fast with ErrPluginUnavailable.
	waitFor(t, 10*time.Second, "the supervisor to see the plugin die", func() bool { return s.Pid() == 0 })
	for range 3 {
		start := time.Now()
		_, err := d.InspectTask(ctx, "a1/web")
		if !errors.Is(err, ErrPluginUnavailable) {
			t.Fatalf("call on a dead plugin: got %v, want ErrPluginUnavailable", err)
		}
		if took := time.Since(start); took > 2*time.Second { // generous: a blocked call would wait out the 10s+ timeouts
			t.Fatalf("call on a dead plugin took %v, want fail fast", took)
		}
	}
	waitFor(t, 10*time.Second, "failed relaunch attempts", func() bool { return launches.get() >= 3 })
	if s.Pid() != 0 {
		t.Fatal("a relaunch with a missing binary left a pid")
	}

	launchable.Store(true)
	waitFor(t, 20*time.Second, "the relaunched plugin", func() bool { p := s.Pid(); return p != 0 && p != oldPid })
	select {
	case got := <-restarted:
		if got != "1" {
			t.Fatalf("OnRestart saw set_config_calls %q, want 1 (SetConfig once on the new process)", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnRestart did not run within 10s of the relaunch")
	}
	// The new process is a fresh driver (tasks are the agent's to recover)
	// and it is the one answering.
	if _, err := d.InspectTask(ctx, "a1/web"); !errors.Is(err, ErrTaskNotFound) {
		t.Fatalf("inspect on the new process: got %v, want ErrTaskNotFound", err)
	}
	if _, err := d.StartTask(ctx, testTaskConfig("a1/web")); err != nil {
		t.Fatal(err)
	}
	st, err := d.InspectTask(ctx, "a1/web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Attributes["pid"] != strconv.Itoa(s.Pid()) {
		t.Fatalf("answered by pid %s, supervisor says %d", st.Attributes["pid"], s.Pid())
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
	if _, err := s.Driver().Fingerprint(ctx); !errors.Is(err, ErrPluginUnavailable) {
		t.Fatalf("got %v, want ErrPluginUnavailable", err)
	}
	s.Stop() // harmless after a failed Start
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
	if _, err := s.Driver().Fingerprint(ctx); !errors.Is(err, ErrPluginUnavailable) {
		t.Fatalf("after Stop: got %v, want ErrPluginUnavailable", err)
	}
	// No relaunch after Stop.
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
// exits nor answers, so only the pings can tell, and go-plugin's own Kill
// would wait for it forever.
func TestSupervisorReplacesHungPlugin(t *testing.T) {
	restarted := make(chan struct{}, 4)
	s := NewSupervisor(SupervisorConfig{
		Name: "mem", Command: pluginCommand, Config: testPluginConfig, Logger: testLogger(t),
		MaxBackoff: 200 * time.Millisecond,
		OnRestart:  func(context.Context, Driver) { restarted <- struct{}{} },
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
	if _, err := s.Driver().Fingerprint(ctx); err != nil {
		t.Fatalf("new plugin: %v", err)
	}
}
