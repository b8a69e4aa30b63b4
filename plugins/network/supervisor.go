package network

import (
	"context"
	"log/slog"
	"os/exec"
	"time"

	"github.com/berth-dev/berth/plugins/internal/pluginproc"
)

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Name is the plugin name for logs ("nft").
	Name string
	// Command builds the command to launch, afresh for every launch
	// (os.Executable() "plugin" "nft", or an external binary).
	Command func() *exec.Cmd
	// Config is passed to SetConfig after every launch; SetConfig on the
	// Supervisor's Network replaces it for later relaunches.
	Config *Config
	Logger *slog.Logger
	// OnRestart is called (in its own goroutine) after a crashed plugin
	// was relaunched and configured, so the agent can run Reconcile and
	// SetPeers again. n is the Supervisor's Network. ctx ends on Stop.
	OnRestart func(ctx context.Context, n Network)
	// MaxBackoff bounds the wait between relaunch attempts (default 10s).
	MaxBackoff time.Duration
}

// Supervisor owns one network plugin process and keeps it alive: it
// relaunches a plugin that exited or stopped answering, with bounded
// exponential backoff. What the plugin installed stays in the kernel
// across relaunches. The process handling is plugins/internal/pluginproc's,
// shared with driver.Supervisor.
type Supervisor struct {
	proc    *pluginproc.Supervisor[Network]
	network *supervisedNetwork

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
	s.network = &supervisedNetwork{s: s, cfg: cfg.Config}
	pcfg := pluginproc.Config[Network]{
		Kind: "network", Name: cfg.Name,
		Handshake: Handshake, Plugins: pluginSet(nil), PluginName: PluginName,
		Command: cfg.Command,
		Configure: func(ctx context.Context, n Network) error {
			return n.SetConfig(ctx, s.network.config())
		},
		Unavailable: ErrPluginUnavailable,
		Logger:      logger.With("component", "network_supervisor", "plugin", cfg.Name),
		MaxBackoff:  cfg.MaxBackoff,
	}
	if cfg.OnRestart != nil {
		pcfg.OnRestart = func(ctx context.Context) { cfg.OnRestart(ctx, s.network) }
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

// Network is a Network that forwards to the current plugin process. While
// the process is dead its calls fail at once with an error wrapping
// ErrPluginUnavailable; calls in flight when it dies fail the same way.
func (s *Supervisor) Network() Network { return s.network }

// Pid is the current plugin process's PID, 0 while none runs.
func (s *Supervisor) Pid() int { return s.proc.Pid() }

// Stop kills the plugin process and ends supervision. What it installed
// is not touched (Cleanup is the call for that). Safe to call more than
// once.
func (s *Supervisor) Stop() { s.proc.Stop() }
