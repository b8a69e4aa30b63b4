package driver

import (
	"context"
	"log/slog"
	"os/exec"
	"time"

	"github.com/berth-dev/berth/plugins/internal/pluginproc"
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
// backoff. Tasks are never touched: they outlive plugin processes. The
// process handling is plugins/internal/pluginproc's.
type Supervisor struct {
	proc   *pluginproc.Supervisor[Driver]
	driver *supervisedDriver

	// Ping timings, fields so tests can shorten them before Start.
	pingEvery, pingTimeout time.Duration
}

// NewSupervisor returns a Supervisor; nothing runs before Start.
func NewSupervisor(cfg SupervisorConfig) *Supervisor {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{pingEvery: pluginproc.DefaultPingEvery, pingTimeout: pluginproc.DefaultPingTimeout}
	s.driver = &supervisedDriver{s: s}
	pcfg := pluginproc.Config[Driver]{
		Kind: "driver", Name: cfg.Name,
		Handshake: Handshake, Plugins: pluginSet(nil), PluginName: PluginName,
		Command:     cfg.Command,
		Configure:   func(ctx context.Context, d Driver) error { return d.SetConfig(ctx, cfg.Config) },
		Unavailable: ErrPluginUnavailable,
		Logger:      logger.With("component", "driver_supervisor", "plugin", cfg.Name),
		MaxBackoff:  cfg.MaxBackoff,
	}
	if cfg.OnRestart != nil {
		pcfg.OnRestart = func(ctx context.Context) { cfg.OnRestart(ctx, s.driver) }
	}
	s.proc = pluginproc.New(pcfg)
	return s
}

// Start launches the plugin and configures it. It fails if that first
// launch fails (ctx bounds it); after that the plugin is kept alive until
// Stop, whatever happens to ctx.
func (s *Supervisor) Start(ctx context.Context) error {
	s.proc.SetPing(s.pingEvery, s.pingTimeout)
	return s.proc.Start(ctx)
}

// Driver is a Driver that forwards to the current plugin process. While
// the process is dead its calls fail at once with an error wrapping
// ErrPluginUnavailable; calls in flight when it dies fail the same way.
func (s *Supervisor) Driver() Driver { return s.driver }

// Pid is the current plugin process's PID, 0 while none runs.
func (s *Supervisor) Pid() int { return s.proc.Pid() }

// Stop kills the plugin process and ends supervision. Tasks are not
// touched. Safe to call more than once.
func (s *Supervisor) Stop() { s.proc.Stop() }

// currentDriver is the live plugin's Driver, or ErrPluginUnavailable.
func (s *Supervisor) currentDriver() (Driver, error) { return s.proc.Current() }
