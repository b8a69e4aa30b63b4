package command

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newEvalCommand(g *globals) *cobra.Command {
	eval := groupCommand("eval", "Inspect evaluations")
	eval.AddCommand(newEvalStatusCommand(g))
	return eval
}

func newEvalStatusCommand(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "status EVAL",
		Short: "Show an evaluation and why its placements failed",
		Long: `Show an evaluation (by ID or unique ID prefix): its status, what triggered
it, and for every task group it could not place, why: "N nodes filtered by
constraint X", "N nodes exhausted on memory"…`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := (&api.QueryOptions{}).WithContext(cmd.Context())
			ev, err := resolveEval(c, args[0], q)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), ev)
			}
			return printEvalStatus(cmd.OutOrStdout(), ev, verbose)
		},
	}
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show full IDs and the raw placement counts")
	return cmd
}

// resolveEval returns the evaluation with ID id, or the only one whose ID
// starts with id.
func resolveEval(c *api.Client, id string, q *api.QueryOptions) (*structs.Evaluation, error) {
	ev, _, err := c.Evaluations().Info(id, q)
	if err == nil {
		return ev, nil
	}
	if !api.IsNotFound(err) {
		return nil, fmt.Errorf("get evaluation %q: %w", id, err)
	}
	pq := *q
	pq.Prefix = id
	evals, _, err := c.Evaluations().List(&pq)
	if err != nil {
		return nil, fmt.Errorf("list evaluations: %w", err)
	}
	switch len(evals) {
	case 0:
		return nil, fmt.Errorf("no evaluation with ID or prefix %q", id)
	case 1:
		return evals[0], nil
	default:
		ids := make([]string, 0, len(evals))
		for _, e := range evals {
			ids = append(ids, e.ID)
		}
		return nil, fmt.Errorf("prefix %q matches %d evaluations: %s", id, len(evals), strings.Join(ids, ", "))
	}
}

// printEvalStatus prints one evaluation with its placement failures.
func printEvalStatus(w io.Writer, ev *structs.Evaluation, verbose bool) error {
	pairs := []kv{
		{"ID", shortID(ev.ID, verbose)},
		{"Create Time", formatUnixNano(ev.CreateTime)},
		{"Modify Time", formatUnixNano(ev.ModifyTime)},
		{"Status", ev.Status},
		{"Status Description", orNone(ev.StatusDescription)},
		{"Type", ev.Type},
		{"TriggeredBy", ev.TriggeredBy},
		{"Job ID", ev.JobID},
		{"Namespace", orNone(ev.Namespace)},
		{"Priority", fmt.Sprint(ev.Priority)},
		{"Placement Failures", fmt.Sprint(len(ev.FailedTGAllocs) > 0)},
	}
	if ev.NodeID != "" {
		pairs = append(pairs, kv{"Node ID", shortID(ev.NodeID, verbose)})
	}
	if ev.PreviousEval != "" {
		pairs = append(pairs, kv{"Previous Eval", shortID(ev.PreviousEval, verbose)})
	}
	if ev.NextEval != "" {
		pairs = append(pairs, kv{"Next Eval", shortID(ev.NextEval, verbose)})
	}
	if ev.BlockedEval != "" {
		pairs = append(pairs, kv{"Blocked Eval", shortID(ev.BlockedEval, verbose)})
	}
	if len(ev.QueuedAllocations) > 0 {
		pairs = append(pairs, kv{"Queued Allocations", formatIntMap(ev.QueuedAllocations)})
	}
	if err := writeKV(w, pairs); err != nil {
		return err
	}
	if len(ev.FailedTGAllocs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nFailed Placements")
	writeFailedPlacements(w, ev.FailedTGAllocs, "")
	if verbose {
		for _, tg := range sortedKeys(ev.FailedTGAllocs) {
			if m := ev.FailedTGAllocs[tg]; m != nil {
				fmt.Fprintf(w, "\nTask Group %q metrics\n", tg)
				if err := writeKV(w, metricSummary(m)); err != nil {
					return err
				}
			}
		}
	}
	if ev.BlockedEval != "" {
		fmt.Fprintf(w, "\nEvaluation %q waiting for additional capacity to place remainder\n", shortID(ev.BlockedEval, verbose))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatIntMap(m map[string]int) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
