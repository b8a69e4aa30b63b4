package command

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// defaultDrainDeadline is Nomad's -deadline default.
const defaultDrainDeadline = time.Hour

type nodeDrainFlags struct {
	enable, disable      bool
	deadline             time.Duration
	ignoreSystem, force  bool
	noDeadline, keepInel bool
	yes, detach, monitor bool
	meta                 []string
	monitorTimeout       time.Duration
}

func newNodeDrainCommand(g *globals) *cobra.Command {
	var f nodeDrainFlags
	cmd := &cobra.Command{
		Use:   "drain (-enable | -disable) [options] NODE",
		Short: "Move all work off a node, or cancel a drain",
		Long: `Drain a node (by ID or unique ID prefix): it becomes ineligible for new
placements and its allocations migrate to other nodes, service groups as
their migrate block allows, batch work when it finishes or at the deadline,
system jobs last. At the deadline whatever is left is stopped.

  -enable       start (or change) the drain
  -disable      cancel the drain; the node becomes eligible again unless
                -keep-ineligible
  -deadline     how long the drain may take (default 1h)
  -force        stop everything now (deadline -1)
  -no-deadline  migrate at the jobs' pace, with no deadline
  -ignore-system  leave system jobs running on the node

Without -detach the command waits for the drain to complete, printing
the node's drain events; -monitor only waits for a drain already running.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNodeDrain(cmd, g, &f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.enable, "enable", false, "start a drain")
	fl.BoolVar(&f.disable, "disable", false, "cancel the drain")
	fl.DurationVar(&f.deadline, "deadline", defaultDrainDeadline, "time before the remaining allocations are stopped")
	fl.BoolVar(&f.ignoreSystem, "ignore-system", false, "leave system jobs on the node")
	fl.BoolVar(&f.force, "force", false, "stop every allocation now")
	fl.BoolVar(&f.noDeadline, "no-deadline", false, "drain without a deadline")
	fl.BoolVar(&f.keepInel, "keep-ineligible", false, "with -disable: leave the node ineligible")
	fl.BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	fl.BoolVar(&f.detach, "detach", false, "return once the drain is set, without waiting for it")
	fl.BoolVar(&f.monitor, "monitor", false, "only wait for a running drain to complete")
	fl.StringArrayVar(&f.meta, "meta", nil, "key=value recorded with the drain's node event (repeatable)")
	fl.DurationVar(&f.monitorTimeout, "monitor-timeout", 0, "give up waiting after this long (0: no limit)")
	_ = fl.MarkHidden("monitor-timeout")
	return cmd
}

// drainSpec turns the flags into Nomad's DrainSpec.
func (f *nodeDrainFlags) drainSpec() (*structs.DrainSpec, error) {
	n := 0
	for _, b := range []bool{f.force, f.noDeadline, f.deadline != defaultDrainDeadline} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, usageErrorf("give at most one of -deadline, -force and -no-deadline")
	}
	spec := &structs.DrainSpec{Deadline: f.deadline, IgnoreSystemJobs: f.ignoreSystem}
	switch {
	case f.force:
		spec.Deadline = -1
	case f.noDeadline:
		spec.Deadline = 0
	case f.deadline <= 0:
		return nil, usageErrorf("-deadline must be positive (use -force or -no-deadline)")
	}
	return spec, nil
}

func runNodeDrain(cmd *cobra.Command, g *globals, f *nodeDrainFlags, id string) error {
	modes := 0
	for _, b := range []bool{f.enable, f.disable, f.monitor} {
		if b {
			modes++
		}
	}
	if modes != 1 {
		return usageErrorf("give exactly one of -enable, -disable or -monitor")
	}
	if f.monitor && f.detach {
		return usageErrorf("-monitor and -detach contradict each other")
	}
	meta := map[string]string{}
	for _, m := range f.meta {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			return usageErrorf("-meta %q: want key=value", m)
		}
		meta[k] = v
	}
	var spec *structs.DrainSpec
	if f.enable {
		var err error
		if spec, err = f.drainSpec(); err != nil {
			return err
		}
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if f.monitorTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.monitorTimeout)
		defer cancel()
	}
	out := cmd.OutOrStdout()
	n, err := resolveNode(c, id, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	if f.monitor {
		return monitorDrain(ctx, c, out, n.ID)
	}
	if f.enable && !f.yes && n.DrainStrategy == nil && isTerminal(cmd.InOrStdin()) {
		if !confirm(cmd.InOrStdin(), out, fmt.Sprintf("Drain node %q (%s)?", n.Name, shortID(n.ID, false))) {
			return fmt.Errorf("drain of node %s cancelled", n.ID)
		}
	}
	req := &api.NodeUpdateDrainRequest{DrainSpec: spec, MarkEligible: f.disable && !f.keepInel}
	if len(meta) > 0 {
		req.Meta = meta
	}
	resp, _, err := c.Nodes().UpdateDrainOpts(n.ID, req, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("update drain of node %q: %w", n.ID, err)
	}
	if g.json && (f.detach || f.disable) {
		return writeJSON(out, resp)
	}
	if f.disable {
		fmt.Fprintf(out, "Node %q drain strategy unset\n", n.ID)
		return nil
	}
	fmt.Fprintf(out, "Node %q drain strategy set\n", n.ID)
	if f.detach {
		return nil
	}
	return monitorDrain(ctx, c, out, n.ID)
}

// monitorDrain prints the node's new drain events until its drain is over.
func monitorDrain(ctx context.Context, c *api.Client, out io.Writer, nodeID string) error {
	seen := map[uint64]bool{}
	print := func(n *structs.Node) {
		for _, e := range n.Events {
			if e.Subsystem != "Drain" || seen[e.CreateIndex] {
				continue
			}
			seen[e.CreateIndex] = true
			fmt.Fprintf(out, "%s: %s\n", e.Timestamp.Local().Format(time.RFC3339), e.Message)
		}
	}
	first := true
	n, err := c.Nodes().WaitDrainDone(ctx, nodeID, func(n *structs.Node) {
		if first {
			// events from before this command are history
			for _, e := range n.Events {
				seen[e.CreateIndex] = true
			}
			first = false
			if n.DrainStrategy != nil {
				fmt.Fprintf(out, "Node %q is draining (deadline %s)\n", nodeID, drainDeadline(n.DrainStrategy))
			}
			return
		}
		print(n)
	})
	if err != nil {
		return fmt.Errorf("monitor drain of node %s: %w", nodeID, err)
	}
	print(n)
	fmt.Fprintf(out, "Node %q has no drain strategy: done\n", nodeID)
	return nil
}

func drainDeadline(ds *structs.DrainStrategy) string {
	switch {
	case ds == nil:
		return "none"
	case ds.Deadline < 0:
		return "forced"
	case ds.ForceDeadline.IsZero():
		return "none"
	}
	return ds.ForceDeadline.Local().Format(time.RFC3339)
}

func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
