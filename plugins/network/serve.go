package network

import (
	"io"
	"log/slog"
	"os"

	"github.com/berth-dev/berth/plugins/internal/pluginproc"
)

// Serve serves n as a network plugin over go-plugin gRPC and never
// returns while the agent lives: it is all `berth plugin nft` (or an
// external network plugin's main) does. logger should write hclog JSON to
// stderr (NewPluginLogger); nil makes one at Info level.
//
// The process exits when its parent dies (the parent PID is polled, as
// for driver plugins): what it installed stays, for the next agent to
// reconcile.
func Serve(n Network, logger *slog.Logger) {
	if logger == nil {
		logger = NewPluginLogger(os.Stderr, slog.LevelInfo)
	}
	pluginproc.Serve(pluginproc.ServeConfig{
		Kind: "network", Handshake: Handshake, Plugins: pluginSet(n), Logger: logger,
	})
}

// NewPluginLogger returns the logger a network plugin process logs with:
// hclog-style JSON lines on w (normally os.Stderr), which go-plugin in the
// agent re-logs at their level. The same format as driver plugins'.
func NewPluginLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return pluginproc.NewPluginLogger(w, level)
}
