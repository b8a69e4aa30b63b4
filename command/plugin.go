package command

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/plugins/containerd"
	"github.com/berth-dev/berth/plugins/driver"
	pluginexec "github.com/berth-dev/berth/plugins/exec"
)

// newPluginCommand is how the agent re-executes this binary as one of its
// built-in driver plugins (`berth plugin containerd|exec`). It speaks
// go-plugin on stdout and logs hclog JSON on stderr; run by hand it
// refuses, since the handshake cookie is missing.
func newPluginCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "plugin containerd|exec",
		Short:     "Serve a built-in driver plugin (launched by the agent)",
		Hidden:    true,
		Args:      exactArgs(1),
		ValidArgs: []string{"containerd", "exec"},
		RunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if os.Getenv("BERTH_PLUGIN_LOG_LEVEL") == "debug" {
				level = slog.LevelDebug
			}
			logger := driver.NewPluginLogger(os.Stderr, level)
			var d driver.Driver
			switch args[0] {
			case "containerd":
				d = containerd.New(logger)
			case "exec":
				d = pluginexec.New(logger)
			default:
				return usageErrorf("unknown plugin %q: use containerd or exec", args[0])
			}
			driver.Serve(d, logger)
			return nil
		},
	}
}
