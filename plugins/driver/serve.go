package driver

import (
	"log/slog"
	"os"

	"github.com/berth-dev/berth/plugins/internal/pluginproc"
)

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
	pluginproc.Serve(pluginproc.ServeConfig{
		Kind: "driver", Handshake: Handshake, Plugins: pluginSet(d), Logger: logger,
	})
}
