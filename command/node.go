package command

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newNodeCommand(g *globals) *cobra.Command {
	node := groupCommand("node", "Inspect worker nodes")
	node.AddCommand(newNodeStatusCommand(g))
	node.AddCommand(newNodeEligibilityCommand(g))
	return node
}

func newNodeStatusCommand(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "status [NODE]",
		Short: "List nodes, or show one node",
		Long:  "Without an argument, list the nodes. With a node ID (or a unique ID prefix), show that node.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := (&api.QueryOptions{}).WithContext(cmd.Context())
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				nodes, _, err := c.Nodes().List(q)
				if err != nil {
					return fmt.Errorf("list nodes: %w", err)
				}
				sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
				if g.json {
					return writeJSON(out, nodes)
				}
				if len(nodes) == 0 {
					fmt.Fprintln(out, "No nodes registered")
					return nil
				}
				return writeTable(out, nodeListHeader, nodeListRows(nodes, verbose))
			}
			n, err := resolveNode(c, args[0], q)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(out, n)
			}
			return writeKV(out, nodeDetail(n))
		},
	}
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show full IDs")
	return cmd
}

// resolveNode returns the node with ID id, or the only one whose ID starts
// with id.
func resolveNode(c *api.Client, id string, q *api.QueryOptions) (*structs.Node, error) {
	return resolveByPrefix("node", id, q,
		func(id string, q *api.QueryOptions) (*structs.Node, error) {
			n, _, err := c.Nodes().Info(id, q)
			return n, err
		},
		func(q *api.QueryOptions) ([]prefixMatch, error) {
			nodes, _, err := c.Nodes().List(q)
			m := make([]prefixMatch, len(nodes))
			for i, n := range nodes {
				m[i] = prefixMatch{id: n.ID}
			}
			return m, err
		})
}

var nodeListHeader = []string{"ID", "Node Pool", "DC", "Name", "Class", "Drain", "Eligibility", "Status"}

func nodeListRows(nodes []*structs.NodeListStub, verbose bool) [][]string {
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		rows = append(rows, []string{
			shortID(n.ID, verbose), orNone(n.NodePool), n.Datacenter, n.Name, orNone(n.NodeClass),
			fmt.Sprint(n.Drain), n.SchedulingEligibility, n.Status,
		})
	}
	return rows
}

func nodeDetail(n *structs.Node) []kv {
	drivers := make([]string, 0, len(n.Drivers))
	for name, d := range n.Drivers {
		if d != nil && d.Detected && d.Healthy {
			drivers = append(drivers, name)
		}
	}
	sort.Strings(drivers)
	pairs := []kv{
		{"ID", n.ID},
		{"Name", n.Name},
		{"Node Pool", orNone(n.NodePool)},
		{"Class", orNone(n.NodeClass)},
		{"DC", n.Datacenter},
		{"Address", orNone(n.HTTPAddr)},
		{"Drain", fmt.Sprint(n.Drain)},
		{"Eligibility", n.SchedulingEligibility},
		{"Status", n.Status},
		{"Drivers", joinOrNone(drivers)},
	}
	if r := n.NodeResources; r != nil {
		pairs = append(pairs,
			kv{"CPU", fmt.Sprintf("%d MHz", r.Cpu.CpuShares)},
			kv{"Memory", fmt.Sprintf("%d MiB", r.Memory.MemoryMB)},
			kv{"Disk", fmt.Sprintf("%d MiB", r.Disk.DiskMB)},
		)
	}
	return pairs
}
