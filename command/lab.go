package command

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/lab"
)

// newLabCommand is `berth lab`: multi-node clusters on this machine, each
// node a network namespace running this berth binary (package lab).
func newLabCommand() *cobra.Command {
	cmd := groupCommand("lab", "Run a multi-node cluster on this machine in network namespaces (root)")
	cmd.Long = `A lab is a cluster on one machine: every node (server-1..N, agent-1..N) is a
network namespace with its own address on a lab bridge, running a real
berth server or berth agent process with its own data dir. Agents share one
private containerd (one containerd namespace each). Needs root.

  berth lab up -servers 3 -agents 2     # prints export BERTH_ADDR=...
  berth lab status
  berth lab partition server-1          # cut server-1 off from the others
  berth lab heal
  berth lab kill agent-1 && berth lab start agent-1
  berth lab exec server-2 -- ip addr
  berth lab down                        # removes everything it made

State lives in $BERTH_LAB_DIR/<name> (default /var/lib/berth-lab/<name>).`
	cmd.AddCommand(newLabUpCommand(), newLabStatusCommand(), newLabExecCommand(),
		newLabPartitionCommand(), newLabHealCommand(), newLabKillCommand(), newLabStartCommand(),
		newLabDownCommand(), newLabRenderConfigCommand())
	return cmd
}

func labName(cmd *cobra.Command) *string {
	name := new(string)
	def := os.Getenv("BERTH_LAB")
	if def == "" {
		def = "lab"
	}
	cmd.Flags().StringVar(name, "name", def, "lab name (env BERTH_LAB)")
	return name
}

func labLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func loadLab(cmd *cobra.Command, name string) (*lab.Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("berth lab needs root (network namespaces)")
	}
	return lab.Load(lab.Dir(name), labLogger(cmd.ErrOrStderr()))
}

func newLabUpCommand() *cobra.Command {
	var o lab.Options
	var ttl, grace time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create a lab and wait until it has a leader and every agent is ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Tuning = lab.Tuning{MinHeartbeatTTL: ttl, HeartbeatGrace: grace}
			o.Logger = labLogger(cmd.ErrOrStderr())
			l, err := lab.Up(cmd.Context(), o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "lab %s is up: %d servers, %d agents on %s (bridge %s, state %s)\n",
				l.Name, len(l.NodesOf(lab.RoleServer)), len(l.NodesOf(lab.RoleAgent)), l.Subnet, l.Bridge, l.Dir)
			printLabNodes(w, l, l.Status(cmd.Context()))
			fmt.Fprintf(w, "\nPoint the CLI at it:\nexport BERTH_ADDR=%s\n", l.Address())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Name, "name", "lab", "lab name: 1-8 characters a-z 0-9")
	fl.IntVar(&o.Servers, "servers", 3, "number of servers")
	fl.IntVar(&o.Agents, "agents", 2, "number of agents")
	fl.StringVar(&o.Subnet, "subnet", "", "lab IPv4 subnet, a /24 (default: the first free 10.77.<n>.0/24)")
	fl.StringVar(&o.Binary, "binary", "", "berth binary the nodes run (default: this one)")
	fl.StringVar(&o.Containerd, "containerd", "auto", "start the agents' shared containerd: auto, yes or no")
	fl.StringVar(&o.LogLevel, "log-level", "info", "log level of the nodes")
	fl.DurationVar(&ttl, "min-heartbeat-ttl", 0, "servers' min_heartbeat_ttl (default: the server's)")
	fl.DurationVar(&grace, "heartbeat-grace", 0, "servers' heartbeat_grace (default: the server's)")
	fl.DurationVar(&o.ReadyTimeout, "timeout", 60*time.Second, "how long to wait for the lab to be ready")
	return cmd
}

func printLabNodes(w io.Writer, l *lab.Lab, sts []lab.NodeStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tPID\tSTATE\tLEADER\tLOG")
	for _, st := range sts {
		state := "running"
		if !st.Running {
			state = "stopped"
		}
		if st.Node.Partitioned {
			state += ",partitioned"
		}
		leader := st.Leader
		if st.Err != nil {
			leader = "?"
		}
		if leader == "" {
			leader = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", st.Node.Name, st.Node.HTTPAddr(), st.Node.Pid, state, leader, st.Node.LogFile())
	}
	tw.Flush()
}

func newLabStatusCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "Show the lab's nodes, processes and leaders", Args: cobra.NoArgs}
	name := labName(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := loadLab(cmd, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "lab %s on %s (bridge %s, state %s)\n", l.Name, l.Subnet, l.Bridge, l.Dir)
		printLabNodes(cmd.OutOrStdout(), l, l.Status(cmd.Context()))
		fmt.Fprintf(cmd.OutOrStdout(), "\nexport BERTH_ADDR=%s\n", l.Address())
		return nil
	}
	return cmd
}

func newLabExecCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec NODE -- CMD [ARGS...]",
		Short: "Run a command inside a node's network namespace (BERTH_ADDR set to the node)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("%s takes a node and a command", cmd.CommandPath())
			}
			return nil
		},
	}
	name := labName(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := loadLab(cmd, *name)
		if err != nil {
			return err
		}
		code, err := l.Exec(args[0], args[1:], cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		if code != 0 {
			return &exitCodeError{code: code}
		}
		return nil
	}
	return cmd
}

// labNodeCommand is a subcommand acting on one lab node.
func labNodeCommand(use, short string, act func(l *lab.Lab, node string) error, done string) *cobra.Command {
	cmd := &cobra.Command{Use: use + " NODE", Short: short, Args: exactArgs(1)}
	name := labName(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := loadLab(cmd, *name)
		if err != nil {
			return err
		}
		if err := act(l, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[0], done)
		return nil
	}
	return cmd
}

func newLabKillCommand() *cobra.Command {
	return labNodeCommand("kill", "SIGKILL a node's berth process (its tasks keep running)",
		func(l *lab.Lab, n string) error { return l.Kill(n) }, "killed")
}

func newLabStartCommand() *cobra.Command {
	return labNodeCommand("start", "Start a stopped node again on the same data dir",
		func(l *lab.Lab, n string) error { return l.Start(n) }, "started")
}

func newLabPartitionCommand() *cobra.Command {
	return labNodeCommand("partition", "Cut NODE[,NODE...] off from the other lab nodes (the host still reaches them)",
		func(l *lab.Lab, n string) error { return l.Partition(strings.Split(n, ",")...) }, "partitioned")
}

func newLabHealCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "heal", Short: "Remove every partition", Args: cobra.NoArgs}
	name := labName(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := loadLab(cmd, *name)
		if err != nil {
			return err
		}
		if err := l.Heal(); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "healed")
		return nil
	}
	return cmd
}

func newLabDownCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "down", Short: "Stop and remove everything the lab made", Args: cobra.NoArgs}
	name := labName(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := loadLab(cmd, *name)
		if err != nil {
			return err
		}
		if err := l.Down(cmd.Context()); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "lab %s is down\n", l.Name)
		return nil
	}
	return cmd
}
