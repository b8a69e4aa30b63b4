package driver

import (
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
)

// parentPollInterval is how often a plugin checks that its agent lives.
const parentPollInterval = 500 * time.Millisecond

// Serve serves d as a driver plugin over go-plugin gRPC and never returns
// while the agent lives: it is all `berth plugin NAME` (or an external
// plugin's main) does. logger should write hclog JSON to stderr
// (NewPluginLogger); nil makes one at Info level.
//
// The process exits when its parent dies. go-plugin only notices a closed
// connection, and Pdeathsig fires when the OS thread that forked the plugin
// exits rather than the agent, so the parent PID is polled instead.
func Serve(d Driver, logger *slog.Logger) {
	if logger == nil {
		logger = NewPluginLogger(os.Stderr, slog.LevelInfo)
	}
	go watchParent(logger, os.Getppid(), parentPollInterval, func() { os.Exit(0) })
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         pluginSet(d),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          newHCLogger(logger, "plugin"),
	})
	logger.Info("driver plugin stopped serving")
}

// watchParent calls exit once the parent PID differs from parent (the
// process was re-parented to init or a subreaper because its parent died).
func watchParent(logger *slog.Logger, parent int, every time.Duration, exit func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if now := os.Getppid(); now != parent {
			logger.Warn("agent process gone, driver plugin exiting", "parent_pid", parent, "new_parent_pid", now)
			exit()
			return
		}
	}
}
