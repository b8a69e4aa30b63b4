package pluginproc

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
)

// ParentPollInterval is how often a plugin checks that its agent lives.
const ParentPollInterval = 500 * time.Millisecond

// ServeConfig says what a plugin process serves.
type ServeConfig struct {
	// Kind names the contract in logs ("driver", "network").
	Kind      string
	Handshake plugin.HandshakeConfig
	Plugins   plugin.PluginSet
	// Logger should write hclog JSON to stderr (NewPluginLogger); nil
	// makes one at Info level.
	Logger *slog.Logger
}

// Serve serves cfg.Plugins over go-plugin gRPC and returns only when
// go-plugin stops serving.
//
// The process exits when its parent dies. go-plugin only notices a closed
// connection, and Pdeathsig fires when the OS thread that forked the plugin
// exits rather than the agent, so the parent PID is polled instead.
func Serve(cfg ServeConfig) {
	logger := cfg.Logger
	if logger == nil {
		logger = NewPluginLogger(os.Stderr, slog.LevelInfo)
	}
	go WatchParent(context.Background(), logger, os.Getppid(), ParentPollInterval, func() { os.Exit(0) })
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: cfg.Handshake,
		Plugins:         cfg.Plugins,
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          NewHCLogger(logger, "plugin"),
	})
	logger.Info(cfg.Kind + " plugin stopped serving")
}

// WatchParent calls exit once the parent PID differs from parent (the
// process was re-parented to init or a subreaper because its parent died).
// It returns after calling exit, or when ctx ends.
func WatchParent(ctx context.Context, logger *slog.Logger, parent int, every time.Duration, exit func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := os.Getppid(); now != parent {
			logger.Warn("agent process gone, plugin exiting", "parent_pid", parent, "new_parent_pid", now)
			exit()
			return
		}
	}
}
