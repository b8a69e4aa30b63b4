package driver

import (
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/plugins/internal/pluginproc"
)

// hclogTimeFormat is the @timestamp layout go-plugin parses.
const hclogTimeFormat = pluginproc.HCLogTimeFormat

// NewPluginLogger returns the logger a plugin process logs with: one
// hclog-style JSON object per line ("@level", "@message", "@timestamp" and
// the attributes) on w, normally os.Stderr, which go-plugin in the agent
// reads and re-logs at the same level.
func NewPluginLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return pluginproc.NewPluginLogger(w, level)
}

// newHCLogger is the hclog.Logger go-plugin wants, writing through logger.
func newHCLogger(logger *slog.Logger, name string) hclog.Logger {
	return pluginproc.NewHCLogger(logger, name)
}
