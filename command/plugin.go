package command

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/plugins/containerd"
	"github.com/berth-dev/berth/plugins/driver"
	pluginexec "github.com/berth-dev/berth/plugins/exec"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/plugins/nft"
)

// newPluginCommand is how the agent re-executes this binary as one of its
// built-in plugins: the driver plugin (`berth plugin drivers`, serving
// containerd, docker, exec and raw_exec from one process; `containerd`
// and `exec` serve their half alone) and the network plugin (`berth
// plugin nft`). It speaks
// go-plugin on stdout and logs hclog JSON on stderr; run by hand it
// refuses, since the handshake cookie is missing.
func newPluginCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "plugin drivers|containerd|exec|nft",
		Short:     "Serve a built-in driver or network plugin (launched by the agent)",
		Hidden:    true,
		Args:      exactArgs(1),
		ValidArgs: []string{"drivers", "containerd", "exec", "nft"},
		RunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if os.Getenv("BERTH_PLUGIN_LOG_LEVEL") == "debug" {
				level = slog.LevelDebug
			}
			if args[0] == "nft" {
				logger := network.NewPluginLogger(os.Stderr, level)
				network.Serve(nft.New(logger), logger)
				return nil
			}
			logger := driver.NewPluginLogger(os.Stderr, level)
			var d driver.Driver
			switch args[0] {
			case "drivers":
				mux, err := builtinDrivers(logger)
				if err != nil {
					return err
				}
				d = mux
			case "containerd":
				d = containerd.New(logger)
			case "exec":
				d = pluginexec.New(logger)
			default:
				return usageErrorf("unknown plugin %q: use drivers, containerd, exec or nft", args[0])
			}
			driver.Serve(d, logger)
			return nil
		},
	}
}

// builtinDrivers is every built-in driver behind one plugin process.
func builtinDrivers(logger *slog.Logger) (*driver.Mux, error) {
	return driver.NewMux(
		driver.MuxMember{Name: "containerd", Driver: containerd.New(logger), Serves: []string{containerd.NameContainerd, containerd.NameDocker}},
		driver.MuxMember{Name: "exec", Driver: pluginexec.New(logger), Serves: []string{pluginexec.NameExec, pluginexec.NameRawExec}},
	)
}
