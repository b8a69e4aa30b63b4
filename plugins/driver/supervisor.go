package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
)

// Supervision timings. Exited() is a mutex read, so it is polled often;
// the ping catches a plugin that lives but no longer answers.
const (
	exitPollInterval  = 100 * time.Millisecond
	pingInterval      = 5 * time.Second
	pingTimeout       = 3 * time.Second
	pingFailuresLimit = 2
	launchTimeout     = 30 * time.Second
	killGrace         = 3 * time.Second
	minBackoff        = 100 * time.Millisecond
	defaultMaxBackoff = 10 * time.Second
)

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Name is the plugin name for logs ("containerd").
	Name string
	// Command builds the command to launch, afresh for every launch
	// (os.Executable() "plugin" "containerd", or an external binary).
	Command func() *exec.Cmd
	// Config is passed to SetConfig after every launch.
	Config *PluginConfig
	Logger *slog.Logger
	// OnRestart is called (in its own goroutine) after a crashed plugin was
	// relaunched and configured, so the agent can RecoverTask every task it
	// owns on it. d is the Supervisor's Driver. ctx ends on Stop.
	OnRestart func(ctx context.Context, d Driver)
	// MaxBackoff bounds the wait between relaunch attempts (default 10s).
	MaxBackoff time.Duration
}

// Supervisor owns one plugin process and keeps it alive: it relaunches a
// plugin that exited or stopped answering, with bounded exponential
// backoff. Tasks are never touched: they outlive plugin processes.
type Supervisor struct {
	cfg    SupervisorConfig
	logger *slog.Logger
	driver *supervisedDriver

	// Ping timings, fields so tests can shorten them.
	pingEvery, pingTimeout time.Duration

	mu      sync.Mutex
	client  *plugin.Client // nil while no plugin runs
	current Driver
	pid     int
	stopped bool

	cancel context.CancelFunc // ends supervision; set by Start
	done   chan struct{}      // closed when the supervision loop returns
}

// NewSupervisor returns a Supervisor; nothing runs before Start.
func NewSupervisor(cfg SupervisorConfig) *Supervisor {
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{
		cfg: cfg, logger: logger.With("component", "driver_supervisor", "plugin", cfg.Name),
		pingEvery: pingInterval, pingTimeout: pingTimeout,
	}
	s.driver = &supervisedDriver{s: s}
	return s
}

// Start launches the plugin and configures it. It fails if that first
// launch fails (ctx bounds it); after that the plugin is kept alive until
// Stop, whatever happens to ctx.
func (s *Supervisor) Start(ctx context.Context) error {
	if s.cfg.Command == nil {
		return fmt.Errorf("start plugin %s: no command", s.cfg.Name)
	}
	s.mu.Lock()
	if s.cancel != nil || s.stopped {
		s.mu.Unlock()
		return fmt.Errorf("start plugin %s: supervisor already started or stopped", s.cfg.Name)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	s.mu.Unlock()

	if err := s.launch(ctx); err != nil {
		cancel()
		close(s.done)
		return err
	}
	go s.supervise(runCtx)
	return nil
}

// Driver is a Driver that forwards to the current plugin process. While
// the process is dead its calls fail at once with an error wrapping
// ErrPluginUnavailable; calls in flight when it dies fail the same way.
func (s *Supervisor) Driver() Driver { return s.driver }

// Pid is the current plugin process's PID, 0 while none runs.
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Stop kills the plugin process and ends supervision. Tasks are not
// touched. Safe to call more than once.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	s.stopped = true
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	s.detach(true)
}

// currentDriver is the live plugin's Driver, or ErrPluginUnavailable.
func (s *Supervisor) currentDriver() (Driver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return nil, fmt.Errorf("plugin %s: %w", s.cfg.Name, ErrPluginUnavailable)
	}
	return s.current, nil
}

// launch starts one plugin process, dispenses its Driver and configures
// it; on success it becomes the current one.
func (s *Supervisor) launch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, launchTimeout)
	defer cancel()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          pluginSet(nil),
		Cmd:              s.cfg.Command(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         false,
		Managed:          false,
		StartTimeout:     launchTimeout,
		Logger:           newHCLogger(s.logger, s.cfg.Name),
	})
	d, err := dispense(ctx, client)
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	if err == nil {
		if err = d.SetConfig(ctx, s.cfg.Config); err != nil {
			err = fmt.Errorf("set config: %w", err)
		}
	}
	if err != nil {
		// Not graceful: a plugin that failed to come up may also fail to
		// shut down.
		s.kill(client, pid, false)
		return fmt.Errorf("launch plugin %s: %w", s.cfg.Name, err)
	}
	s.mu.Lock()
	stopped := s.stopped
	if !stopped {
		s.client, s.current, s.pid = client, d, pid
	}
	s.mu.Unlock()
	if stopped {
		s.kill(client, pid, true)
		return fmt.Errorf("launch plugin %s: supervisor stopped", s.cfg.Name)
	}
	s.logger.Info("driver plugin running", "pid", pid)
	return nil
}

// dispense starts the process and gets its Driver, giving up when ctx
// ends (go-plugin's own start has only a timeout).
func dispense(ctx context.Context, client *plugin.Client) (Driver, error) {
	type result struct {
		d   Driver
		err error
	}
	ch := make(chan result, 1)
	go func() {
		rpc, err := client.Client()
		if err != nil {
			ch <- result{err: err}
			return
		}
		raw, err := rpc.Dispense(PluginName)
		if err != nil {
			ch <- result{err: err}
			return
		}
		d, ok := raw.(Driver)
		if !ok {
			ch <- result{err: fmt.Errorf("plugin dispensed %T, not a driver", raw)}
			return
		}
		ch <- result{d: d}
	}()
	select {
	case r := <-ch:
		return r.d, r.err
	case <-ctx.Done():
		client.Kill() // makes client.Client() return
		return nil, ctx.Err()
	}
}

// detach forgets the current plugin and kills its process, asking it to
// shut down first when graceful.
func (s *Supervisor) detach(graceful bool) {
	s.mu.Lock()
	client, pid := s.client, s.pid
	s.client, s.current, s.pid = nil, nil, 0
	s.mu.Unlock()
	if client != nil {
		s.kill(client, pid, graceful)
	}
}

// kill ends the plugin process. go-plugin's Kill first asks the plugin to
// shut down and waits for the answer with no timeout, which never comes
// from a hung process: after killGrace (at once unless graceful) the
// process gets SIGKILL, which lets Kill finish.
func (s *Supervisor) kill(client *plugin.Client, pid int, graceful bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Kill()
	}()
	grace := killGrace
	if !graceful {
		grace = 0
	}
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	if pid > 0 && !client.Exited() {
		s.logger.Warn("driver plugin did not shut down, killing it", "pid", pid)
		if proc, err := os.FindProcess(pid); err != nil {
			s.logger.Warn("find driver plugin process", "pid", pid, "error", err)
		} else if err := proc.Kill(); err != nil {
			s.logger.Warn("kill driver plugin", "pid", pid, "error", err)
		}
	}
	select {
	case <-done:
	case <-time.After(killGrace):
		s.logger.Error("driver plugin client did not close after SIGKILL", "pid", pid)
	}
}

// supervise waits for the plugin to die, then relaunches it, until ctx ends.
func (s *Supervisor) supervise(ctx context.Context) {
	defer close(s.done)
	for {
		reason := s.waitForDeath(ctx)
		if ctx.Err() != nil {
			return
		}
		s.logger.Warn("driver plugin died, relaunching", "reason", reason)
		s.detach(reason != reasonHung)
		if !s.relaunch(ctx) {
			return
		}
		if s.cfg.OnRestart != nil {
			go s.cfg.OnRestart(ctx, s.driver)
		}
	}
}

// reasonHung is waitForDeath's answer for a plugin that lives but does
// not answer.
const reasonHung = "not answering pings"

// waitForDeath returns once the current plugin exited or failed
// pingFailuresLimit pings in a row, or ctx ended.
func (s *Supervisor) waitForDeath(ctx context.Context) string {
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	if client == nil {
		return "no plugin process"
	}
	exitTick := time.NewTicker(exitPollInterval)
	defer exitTick.Stop()
	pingTick := time.NewTicker(s.pingEvery)
	defer pingTick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return "stopped"
		case <-exitTick.C:
			if client.Exited() {
				return "process exited"
			}
		case <-pingTick.C:
			if err := ping(client, s.pingTimeout); err != nil {
				failures++
				s.logger.Warn("driver plugin ping failed", "error", err, "failures", failures)
				if failures >= pingFailuresLimit {
					return reasonHung
				}
			} else {
				failures = 0
			}
		}
	}
}

var errPingTimeout = errors.New("ping timed out")

// ping checks the plugin answers; go-plugin's Ping takes no context, so a
// hung plugin is given up on after timeout (killing it frees the call).
func ping(client *plugin.Client, timeout time.Duration) error {
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	go func() { ch <- rpc.Ping() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(timeout):
		return errPingTimeout
	}
}

// relaunch tries to launch until it succeeds (true) or ctx ends (false),
// doubling the wait between attempts up to MaxBackoff.
func (s *Supervisor) relaunch(ctx context.Context) bool {
	backoff := min(minBackoff, s.cfg.MaxBackoff)
	for attempt := 1; ; attempt++ {
		err := s.launch(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.logger.Error("driver plugin relaunch failed", "attempt", attempt, "retry_in", backoff, "error", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}
