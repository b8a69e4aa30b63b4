package pluginproc

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

// Supervision defaults. The ping catches a plugin that lives but no
// longer answers.
const (
	DefaultPingEvery   = 5 * time.Second
	DefaultPingTimeout = 3 * time.Second
	DefaultMaxBackoff  = 10 * time.Second
)

// Fixed supervision timings. Exited() is a mutex read, so it is polled
// often.
const (
	exitPollInterval  = 100 * time.Millisecond
	pingFailuresLimit = 2
	launchTimeout     = 30 * time.Second
	killGrace         = 3 * time.Second
	minBackoff        = 100 * time.Millisecond
)

// Config configures a Supervisor of plugins dispensing a T.
type Config[T any] struct {
	// Kind names the contract in logs and errors ("driver", "network").
	Kind string
	// Name is the plugin name for logs ("containerd", "nft").
	Name string
	// Handshake, Plugins and PluginName are the contract's go-plugin
	// handshake, client-side plugin set and the key dispensed.
	Handshake  plugin.HandshakeConfig
	Plugins    plugin.PluginSet
	PluginName string
	// Command builds the command to launch, afresh for every launch.
	Command func() *exec.Cmd
	// Configure runs on every new process before it becomes current
	// (SetConfig); an error fails the launch.
	Configure func(ctx context.Context, t T) error
	// OnRestart is called (in its own goroutine) after a crashed plugin
	// was relaunched and configured. ctx ends on Stop.
	OnRestart func(ctx context.Context)
	// Unavailable is the sentinel Current wraps while no process runs.
	Unavailable error
	Logger      *slog.Logger
	// MaxBackoff bounds the wait between relaunch attempts (default 10s).
	MaxBackoff time.Duration
}

// Supervisor owns one plugin process and keeps it alive: it relaunches a
// plugin that exited or stopped answering, with bounded exponential
// backoff.
type Supervisor[T any] struct {
	cfg    Config[T]
	logger *slog.Logger

	// Ping timings; SetPing changes them before Start.
	pingEvery, pingTimeout time.Duration

	mu      sync.Mutex
	client  *plugin.Client // nil while no plugin runs
	current T
	live    bool // current is set
	pid     int
	stopped bool

	cancel context.CancelFunc // ends supervision; set by Start
	done   chan struct{}      // closed when the supervision loop returns
}

// New returns a Supervisor; nothing runs before Start.
func New[T any](cfg Config[T]) *Supervisor[T] {
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Unavailable == nil {
		cfg.Unavailable = errors.New(cfg.Kind + " plugin unavailable")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor[T]{
		cfg: cfg, logger: logger,
		pingEvery: DefaultPingEvery, pingTimeout: DefaultPingTimeout,
	}
}

// SetPing changes the health ping's interval and timeout (tests shorten
// them). Call it before Start.
func (s *Supervisor[T]) SetPing(every, timeout time.Duration) {
	if every > 0 {
		s.pingEvery = every
	}
	if timeout > 0 {
		s.pingTimeout = timeout
	}
}

// Start launches the plugin and configures it. It fails if that first
// launch fails (ctx bounds it); after that the plugin is kept alive until
// Stop, whatever happens to ctx.
func (s *Supervisor[T]) Start(ctx context.Context) error {
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

// Current is the live plugin's T, or an error wrapping cfg.Unavailable.
func (s *Supervisor[T]) Current() (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live {
		var zero T
		return zero, fmt.Errorf("plugin %s: %w", s.cfg.Name, s.cfg.Unavailable)
	}
	return s.current, nil
}

// Pid is the current plugin process's PID, 0 while none runs.
func (s *Supervisor[T]) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Stop kills the plugin process and ends supervision. Safe to call more
// than once, and before or after a failed Start.
func (s *Supervisor[T]) Stop() {
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

// launch starts one plugin process, dispenses its T and configures it; on
// success it becomes the current one.
func (s *Supervisor[T]) launch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, launchTimeout)
	defer cancel()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  s.cfg.Handshake,
		Plugins:          s.cfg.Plugins,
		Cmd:              s.cfg.Command(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         false,
		Managed:          false,
		StartTimeout:     launchTimeout,
		Logger:           NewHCLogger(s.logger, s.cfg.Name),
	})
	t, err := s.dispense(ctx, client)
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	if err == nil && s.cfg.Configure != nil {
		if err = s.cfg.Configure(ctx, t); err != nil {
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
		s.client, s.current, s.live, s.pid = client, t, true, pid
	}
	s.mu.Unlock()
	if stopped {
		s.kill(client, pid, true)
		return fmt.Errorf("launch plugin %s: supervisor stopped", s.cfg.Name)
	}
	s.logger.Info(s.cfg.Kind+" plugin running", "pid", pid)
	return nil
}

// dispense starts the process and gets its T, giving up when ctx ends
// (go-plugin's own start has only a timeout).
func (s *Supervisor[T]) dispense(ctx context.Context, client *plugin.Client) (T, error) {
	type result struct {
		t   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		rpc, err := client.Client()
		if err != nil {
			ch <- result{err: err}
			return
		}
		raw, err := rpc.Dispense(s.cfg.PluginName)
		if err != nil {
			ch <- result{err: err}
			return
		}
		t, ok := raw.(T)
		if !ok {
			ch <- result{err: fmt.Errorf("plugin dispensed %T, not a %s", raw, s.cfg.Kind)}
			return
		}
		ch <- result{t: t}
	}()
	select {
	case r := <-ch:
		return r.t, r.err
	case <-ctx.Done():
		client.Kill() // makes client.Client() return
		var zero T
		return zero, ctx.Err()
	}
}

// detach forgets the current plugin and kills its process, asking it to
// shut down first when graceful.
func (s *Supervisor[T]) detach(graceful bool) {
	s.mu.Lock()
	client, pid := s.client, s.pid
	var zero T
	s.client, s.current, s.live, s.pid = nil, zero, false, 0
	s.mu.Unlock()
	if client != nil {
		s.kill(client, pid, graceful)
	}
}

// kill ends the plugin process. go-plugin's Kill first asks the plugin to
// shut down and waits for the answer with no timeout, which never comes
// from a hung process: after killGrace (at once unless graceful) the
// process gets SIGKILL, which lets Kill finish.
func (s *Supervisor[T]) kill(client *plugin.Client, pid int, graceful bool) {
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
		s.logger.Warn(s.cfg.Kind+" plugin did not shut down, killing it", "pid", pid)
		if proc, err := os.FindProcess(pid); err != nil {
			s.logger.Warn("find plugin process", "pid", pid, "error", err)
		} else if err := proc.Kill(); err != nil {
			s.logger.Warn("kill plugin process", "pid", pid, "error", err)
		}
	}
	select {
	case <-done:
	case <-time.After(killGrace):
		s.logger.Error(s.cfg.Kind+" plugin client did not close after SIGKILL", "pid", pid)
	}
}

// supervise waits for the plugin to die, then relaunches it, until ctx ends.
func (s *Supervisor[T]) supervise(ctx context.Context) {
	defer close(s.done)
	for {
		reason := s.waitForDeath(ctx)
		if ctx.Err() != nil {
			return
		}
		s.logger.Warn(s.cfg.Kind+" plugin died, relaunching", "reason", reason)
		s.detach(reason != reasonHung)
		if !s.relaunch(ctx) {
			return
		}
		if s.cfg.OnRestart != nil {
			go s.cfg.OnRestart(ctx)
		}
	}
}

// reasonHung is waitForDeath's answer for a plugin that lives but does
// not answer.
const reasonHung = "not answering pings"

// waitForDeath returns once the current plugin exited or failed
// pingFailuresLimit pings in a row, or ctx ended.
func (s *Supervisor[T]) waitForDeath(ctx context.Context) string {
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
				s.logger.Warn(s.cfg.Kind+" plugin ping failed", "error", err, "failures", failures)
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
func (s *Supervisor[T]) relaunch(ctx context.Context) bool {
	backoff := min(minBackoff, s.cfg.MaxBackoff)
	for attempt := 1; ; attempt++ {
		err := s.launch(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.logger.Error(s.cfg.Kind+" plugin relaunch failed", "attempt", attempt, "retry_in", backoff, "error", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}
