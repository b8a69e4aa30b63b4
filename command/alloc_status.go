package command

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newAllocCommand(g *globals) *cobra.Command {
	alloc := groupCommand("alloc", "Inspect and operate allocations")
	alloc.AddCommand(newAllocStatusCommand(g))
	alloc.AddCommand(newAllocStopCommand(g), newAllocSignalCommand(g), newAllocRestartCommand(g),
		newAllocLogsCommand(g), newAllocExecCommand(g))
	return alloc
}

func newAllocStatusCommand(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "status [-verbose] [ALLOC]",
		Short: "List allocations, or show one allocation",
		Long: `Without an argument, list the allocations of the namespace (-namespace "*"
for all). With an allocation ID (or unique ID prefix), show the allocation
and its tasks; -verbose adds the placement metrics: how many nodes were
evaluated, filtered (per constraint and class) and exhausted (per resource
dimension), and the score of every node considered.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := (&api.QueryOptions{}).WithContext(cmd.Context())
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				allocs, _, err := c.Allocations().List(q)
				if err != nil {
					return fmt.Errorf("list allocations: %w", err)
				}
				sort.Slice(allocs, func(i, j int) bool { return allocs[i].CreateIndex > allocs[j].CreateIndex })
				if g.json {
					return writeJSON(out, nonNilSlice(allocs))
				}
				if len(allocs) == 0 {
					fmt.Fprintln(out, "No allocations")
					return nil
				}
				return writeTable(out, allocListHeader, allocListRows(allocs, verbose, time.Now()))
			}
			a, err := resolveAlloc(c, args[0], q)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(out, a)
			}
			return printAllocStatus(out, a, verbose, time.Now())
		},
	}
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show full IDs and the placement metrics")
	return cmd
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// resolveAlloc returns the allocation with ID id, or the only one whose ID
// starts with id.
func resolveAlloc(c *api.Client, id string, q *api.QueryOptions) (*structs.Allocation, error) {
	return resolveByPrefix("allocation", id, q,
		func(id string, q *api.QueryOptions) (*structs.Allocation, error) {
			a, _, err := c.Allocations().Info(id, q)
			return a, err
		},
		func(q *api.QueryOptions) ([]prefixMatch, error) {
			allocs, _, err := c.Allocations().List(q)
			m := make([]prefixMatch, len(allocs))
			for i, a := range allocs {
				m[i] = prefixMatch{id: a.ID, namespace: a.Namespace}
			}
			return m, err
		})
}

var allocListHeader = []string{"ID", "Node ID", "Job ID", "Task Group", "Version", "Desired", "Status", "Created", "Modified"}

func allocListRows(allocs []*structs.AllocListStub, verbose bool, now time.Time) [][]string {
	rows := make([][]string, 0, len(allocs))
	for _, a := range allocs {
		rows = append(rows, []string{
			shortID(a.ID, verbose), orNone(shortID(a.NodeID, verbose)), a.JobID, a.TaskGroup, fmt.Sprint(a.JobVersion),
			a.DesiredStatus, a.ClientStatus, formatAge(a.CreateTime, now), formatAge(a.ModifyTime, now),
		})
	}
	return rows
}

// printAllocStatus prints one allocation; verbose adds the placement
// metrics.
func printAllocStatus(w io.Writer, a *structs.Allocation, verbose bool, now time.Time) error {
	version := "<none>"
	if a.Job != nil {
		version = fmt.Sprint(a.Job.Version)
	}
	pairs := []kv{
		{"ID", a.ID},
		{"Eval ID", shortID(a.EvalID, verbose)},
		{"Name", a.Name},
		{"Node ID", orNone(shortID(a.NodeID, verbose))},
		{"Node Name", orNone(a.NodeName)},
		{"Job ID", a.JobID},
		{"Job Version", version},
		{"Namespace", orNone(a.Namespace)},
		{"Client Status", a.ClientStatus},
		{"Client Description", orNone(a.ClientDescription)},
		{"Desired Status", a.DesiredStatus},
		{"Desired Description", orNone(a.DesiredDescription)},
		{"Created", formatAge(a.CreateTime, now)},
		{"Modified", formatAge(a.ModifyTime, now)},
	}
	if a.PreviousAllocation != "" {
		pairs = append(pairs, kv{"Replaces", shortID(a.PreviousAllocation, verbose)})
	}
	if a.NextAllocation != "" {
		pairs = append(pairs, kv{"Replaced By", shortID(a.NextAllocation, verbose)})
	}
	if a.PreemptedByAllocation != "" {
		pairs = append(pairs, kv{"Preempted By", shortID(a.PreemptedByAllocation, verbose)})
	}
	if len(a.PreemptedAllocations) > 0 {
		ids := make([]string, len(a.PreemptedAllocations))
		for i, id := range a.PreemptedAllocations {
			ids[i] = shortID(id, verbose)
		}
		pairs = append(pairs, kv{"Preempted Allocations", strings.Join(ids, ", ")})
	}
	if verbose {
		pairs = append(pairs,
			kv{"Create Index", fmt.Sprint(a.CreateIndex)},
			kv{"Modify Index", fmt.Sprint(a.ModifyIndex)},
		)
	}
	if err := writeKV(w, pairs); err != nil {
		return err
	}

	if len(a.TaskStates) > 0 {
		tasks := make([]string, 0, len(a.TaskStates))
		for name := range a.TaskStates {
			tasks = append(tasks, name)
		}
		sort.Strings(tasks)
		rows := make([][]string, 0, len(tasks))
		for _, name := range tasks {
			ts := a.TaskStates[name]
			if ts == nil {
				continue
			}
			rows = append(rows, []string{name, ts.State, fmt.Sprint(ts.Failed), fmt.Sprint(ts.Restarts)})
		}
		fmt.Fprintln(w, "\nTasks")
		if err := writeTable(w, []string{"Task", "State", "Failed", "Restarts"}, rows); err != nil {
			return err
		}
	}

	if verbose {
		fmt.Fprintln(w, "\nPlacement Metrics")
		return writePlacementMetrics(w, a.Metrics, verbose)
	}
	return nil
}
