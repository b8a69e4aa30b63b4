package command

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newNodeCommand(g *globals) *cobra.Command {
	node := groupCommand("node", "Inspect worker nodes")
	node.AddCommand(newNodeStatusCommand(g))
	node.AddCommand(newNodeEligibilityCommand(g))
	node.AddCommand(newNodeDrainCommand(g))
	return node
}

func newNodeStatusCommand(g *globals) *cobra.Command {
	var verbose, stats bool
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
			var hs *api.HostStats
			if stats {
				if hs, err = c.Nodes().Stats(n.ID, q); err != nil {
					return fmt.Errorf("host stats of node %q: %w", n.ID, err)
				}
			}
			if g.json {
				if stats {
					return writeJSON(out, hs)
				}
				return writeJSON(out, n)
			}
			allocs, _, err := c.Nodes().Allocations(n.ID, q)
			if err != nil {
				return fmt.Errorf("list allocations of node %q: %w", n.ID, err)
			}
			if err := printNodeStatus(out, n, allocs, verbose, time.Now()); err != nil || !stats {
				return err
			}
			return printHostStats(out, n, hs)
		},
	}
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show full IDs, and the node's attributes and meta")
	cmd.Flags().BoolVar(&stats, "stats", false, "also show the host's CPU, memory and disk usage, as its agent measures it (with -json: the stats alone)")
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
		{"Drain", drainState(n)},
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

// drainState is the Drain line of the node detail: false, or the drain's
// deadline and whether system jobs stay.
func drainState(n *structs.Node) string {
	ds := n.DrainStrategy
	if ds == nil {
		return "false"
	}
	s := "true; deadline " + drainDeadline(ds)
	if ds.IgnoreSystemJobs {
		s += "; ignoring system jobs"
	}
	return s
}

// printNodeStatus prints the node detail, its drivers, recent events,
// allocations and, with verbose, its attributes and meta.
func printNodeStatus(w io.Writer, n *structs.Node, allocs []*structs.Allocation, verbose bool, now time.Time) error {
	if err := writeKV(w, nodeDetail(n)); err != nil {
		return err
	}
	if len(n.Drivers) > 0 {
		names := make([]string, 0, len(n.Drivers))
		for name := range n.Drivers {
			names = append(names, name)
		}
		sort.Strings(names)
		rows := make([][]string, 0, len(names))
		for _, name := range names {
			d := n.Drivers[name]
			if d == nil {
				continue
			}
			rows = append(rows, []string{name, fmt.Sprint(d.Detected), fmt.Sprint(d.Healthy), orNone(d.HealthDescription)})
		}
		fmt.Fprintln(w, "\nDrivers")
		if err := writeTable(w, []string{"Driver", "Detected", "Healthy", "Message"}, rows); err != nil {
			return err
		}
	}
	if len(n.Events) > 0 {
		rows := make([][]string, 0, len(n.Events))
		for i := len(n.Events) - 1; i >= 0; i-- {
			e := n.Events[i]
			rows = append(rows, []string{e.Timestamp.Local().Format(time.RFC3339), orNone(e.Subsystem), e.Message})
		}
		fmt.Fprintln(w, "\nNode Events")
		if err := writeTable(w, []string{"Time", "Subsystem", "Message"}, rows); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nAllocations")
	if len(allocs) == 0 {
		fmt.Fprintln(w, "No allocations placed")
	} else {
		sort.Slice(allocs, func(i, j int) bool { return allocs[i].CreateIndex > allocs[j].CreateIndex })
		stubs := make([]*structs.AllocListStub, len(allocs))
		for i, a := range allocs {
			stubs[i] = a.Stub()
		}
		if err := writeTable(w, allocListHeader, allocListRows(stubs, verbose, now)); err != nil {
			return err
		}
	}
	if verbose {
		for _, sec := range []struct {
			title string
			m     map[string]string
		}{{"Attributes", n.Attributes}, {"Meta", n.Meta}} {
			if len(sec.m) == 0 {
				continue
			}
			keys := make([]string, 0, len(sec.m))
			for k := range sec.m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			pairs := make([]kv, len(keys))
			for i, k := range keys {
				pairs[i] = kv{k, sec.m[k]}
			}
			fmt.Fprintf(w, "\n%s\n", sec.title)
			if err := writeKV(w, pairs); err != nil {
				return err
			}
		}
	}
	return nil
}
