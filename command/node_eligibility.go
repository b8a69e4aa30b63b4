package command

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
)

func newNodeEligibilityCommand(g *globals) *cobra.Command {
	var enable, disable bool
	cmd := &cobra.Command{
		Use:   "eligibility (-enable | -disable) NODE",
		Short: "Allow or forbid new placements on a node",
		Long: `Mark a node (by ID or unique ID prefix) eligible (-enable) or ineligible
(-disable) for new placements. Allocations already running on the node
keep running; use a drain to move them.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if enable == disable {
				return usageErrorf("give exactly one of -enable or -disable")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			q := (&api.QueryOptions{}).WithContext(cmd.Context())
			n, err := resolveNode(c, args[0], q)
			if err != nil {
				return err
			}
			resp, _, err := c.Nodes().ToggleEligibility(n.ID, enable, (&api.WriteOptions{}).WithContext(cmd.Context()))
			if err != nil {
				return fmt.Errorf("set eligibility of node %q: %w", n.ID, err)
			}
			out := cmd.OutOrStdout()
			if g.json {
				return writeJSON(out, resp)
			}
			state := "ineligible"
			if enable {
				state = "eligible"
			}
			fmt.Fprintf(out, "Node %q scheduling eligibility set: %s for scheduling\n", n.ID, state)
			return nil
		},
	}
	cmd.Flags().BoolVar(&enable, "enable", false, "allow new placements on the node")
	cmd.Flags().BoolVar(&disable, "disable", false, "forbid new placements on the node")
	return cmd
}
