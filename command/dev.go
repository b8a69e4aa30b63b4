package command

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/agent"
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
			// the in-process agent: raw_exec on as in Nomad's dev mode, a
			// private containerd if none answers; plugins still run out of
			// process (this binary re-executed). Bridge networking needs
			// root, so without it bridge-mode groups fail with a clear event.
			agentCfg := agent.Config{
				DataDir: filepath.Join(f.dataDir, "agent"), NodeName: cfg.NodeName, Datacenter: cfg.Datacenter,
				Region: cfg.Region, BindAddr: "127.0.0.1", GossipPort: -1, Servers: []string{srv.HTTPAddr()},
				RawExecEnabled: true, Version: Version,
				Containerd: agent.ContainerdConfig{StartIfMissing: true},
			}
			if os.Geteuid() == 0 {
				agentCfg.NetworkPlugin = "nft"
			}
			agentLogger := cfg.Logger.With("component", "dev_agent")
			ag, err := agent.New(agentCfg, agentLogger)
			if err != nil {
				srv.Kill()
				return err
			}
			if err := ag.Start(context.Background()); err != nil {
				srv.Kill()
				return err
			}
			defer func() {
				// a dev cluster leaves nothing running behind it
				ag.StopAllocs(30 * time.Second)
				ag.Shutdown()
				if agentCfg.NetworkPlugin != "" {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					if err := agent.CleanupNetwork(ctx, agentCfg, agentLogger); err != nil {
						agentLogger.Warn("removing the dev agent's networks", "error", err)
					}
				}
			}()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "berth dev cluster ready in %s (data in %s)\n", time.Since(start).Round(time.Millisecond), f.dataDir)
			fmt.Fprintf(out, "  API: http://%s/v1/\n", srv.HTTPAddr())
			fmt.Fprintf(out, "  Agent: node %s, HTTP http://%s\n", ag.NodeID(), ag.HTTPAddr())
			fmt.Fprintf(out, "  Point the CLI at it:\n    export BERTH_ADDR=http://%s\n", srv.HTTPAddr())
			fmt.Fprintf(out, "  Try: berth job init && berth job run example.nomad.hcl\n")
			return waitForSignal(srv)
		},
	}
	f.register(cmd, true)
	return cmd
}
