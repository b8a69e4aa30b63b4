package command

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/server"
)

func newDevCommand() *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a throw-away single-node cluster on loopback",
		Long: `Run one server in this process with its data in a temporary directory (or
-data-dir), everything on loopback, bootstrapped at once. Ctrl-C stops it and
removes the temporary data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			if f.dataDir == "" {
				dir, err := os.MkdirTemp("", "berth-dev-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				f.dataDir = dir
			}
			f.bootstrapExpect = 1
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			if f.node == "" {
				cfg.NodeName = "dev"
			}
			cfg.GossipLocal = true
			cfg.EnableDebug = true
			cfg.RaftHeartbeatTimeout = 100 * time.Millisecond
			cfg.RaftElectionTimeout = 100 * time.Millisecond
			cfg.RaftLeaderLeaseTimeout = 50 * time.Millisecond
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			if err := srv.WaitForLeader(10 * time.Second); err != nil {
				srv.Kill()
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "berth dev cluster ready in %s (data in %s)\n", time.Since(start).Round(time.Millisecond), f.dataDir)
			fmt.Fprintf(out, "  API: http://%s/v1/\n", srv.HTTPAddr())
			fmt.Fprintf(out, "  Point the CLI at it:\n    export BERTH_ADDR=http://%s\n", srv.HTTPAddr())
			fmt.Fprintf(out, "  Try: berth job init && berth job run example.nomad.hcl\n")
			return waitForSignal(srv)
		},
	}
	f.register(cmd, true)
	return cmd
}
