package command

import (
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/jobspec"
	"github.com/berth-dev/berth/structs"
)

// errPlacementsWouldFail makes job plan exit 1 after printing the plan.
var errPlacementsWouldFail = silentError{}

func newJobPlanCommand(g *globals) *cobra.Command {
	var (
		vars, varFiles []string
		verbose        bool
	)
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what the scheduler would do with a job file, without changing anything",
		Long: `Ask the scheduler what running the job file would do: per task group, how
many allocations it would create, destroy, update in place or replace
(create/destroy update), and which it could not place and why. Nothing is
committed. The output ends with the job's modify index and the
'berth job run -check-index N FILE' command that submits the job only if
nobody changed it since this plan.

Exit codes:
  0  every allocation would be placed (or nothing would change)
  1  some allocations would fail to place, or the plan itself failed
  2  the command line is wrong`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, warnings, err := jobspec.ParseFile(args[0], jobspec.Options{Vars: vars, VarFiles: varFiles})
			if err != nil {
				return fmt.Errorf("parse job file: %w", err)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if job.Namespace == "" {
				job.Namespace = g.effectiveNamespace()
			}
			w := (&api.WriteOptions{Namespace: job.Namespace}).WithContext(cmd.Context())
			resp, _, err := c.Jobs().Plan(job, true, w)
			if err != nil {
				return fmt.Errorf("plan job %q: %w", job.ID, err)
			}
			out := cmd.OutOrStdout()
			if g.json {
				if err := writeJSON(out, resp); err != nil {
					return err
				}
			} else {
				for _, w := range warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %s\n", w)
				}
				writeJobPlan(out, job, resp, args[0], verbose)
			}
			if len(resp.FailedTGAllocs) > 0 {
				return errPlacementsWouldFail
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&vars, "var", nil, "set a job file variable: name=value (repeatable)")
	f.StringArrayVar(&varFiles, "var-file", nil, "read job file variables from a file (repeatable)")
	f.BoolVar(&verbose, "verbose", false, "show full IDs and the score of preempted allocations")
	return cmd
}

// writeJobPlan prints a plan response.
func writeJobPlan(w io.Writer, job *structs.Job, resp *structs.JobPlanResponse, file string, verbose bool) {
	var updates map[string]*structs.DesiredUpdates
	if resp.Annotations != nil {
		updates = resp.Annotations.DesiredTGUpdates
	}
	if d := decodePlanDiff(resp.Diff); d != nil {
		writeJobDiff(w, d, updates, verbose)
	} else {
		writePlanGroups(w, job, updates)
	}

	fmt.Fprintln(w, "\nScheduler dry-run:")
	if len(resp.FailedTGAllocs) == 0 {
		fmt.Fprintln(w, "- All tasks successfully allocated.")
	} else {
		fmt.Fprintf(w, "- WARNING: Failed to place %s.\n", plural(failedPlacementCount(resp.FailedTGAllocs), "allocation", "allocations"))
		writeFailedPlacements(w, resp.FailedTGAllocs, "  ")
	}
	if resp.Annotations != nil && len(resp.Annotations.PreemptedAllocs) > 0 {
		fmt.Fprintf(w, "\nPreemptions: %s would be evicted\n", plural(len(resp.Annotations.PreemptedAllocs), "allocation", "allocations"))
		rows := make([][]string, 0, len(resp.Annotations.PreemptedAllocs))
		for _, a := range resp.Annotations.PreemptedAllocs {
			rows = append(rows, []string{shortID(a.ID, verbose), a.JobID, shortID(a.NodeID, verbose), a.TaskGroup})
		}
		_ = writeTable(w, []string{"Alloc ID", "Job ID", "Node ID", "Task Group"}, rows)
	}
	if resp.Warnings != "" {
		fmt.Fprintf(w, "\nJob Warnings:\n%s\n", resp.Warnings)
	}
	fmt.Fprintf(w, "\nJob Modify Index: %d\n", resp.JobModifyIndex)
	fmt.Fprintln(w, "To submit the job with version verification run:")
	fmt.Fprintf(w, "\nberth job run -check-index %d %s\n", resp.JobModifyIndex, file)
	fmt.Fprintln(w, `
When running the job with the check-index flag, the job will only be run if
the job modify index given matches the server-side version. If the index has
changed, another user has modified the job and the plan's results are
potentially invalid.`)
}

// checkIndexFlag is job run's -check-index.
const checkIndexFlag = "check-index"

// addCheckIndexFlag defines job run's -check-index on f.
func addCheckIndexFlag(cmd *cobra.Command) {
	cmd.Flags().Uint64(checkIndexFlag, 0, "register only if the job's modify index is N (0: only if the job does not exist yet), as printed by job plan")
}

// registerJob registers job, as a check-and-set on its modify index when
// -check-index was given.
func registerJob(cmd *cobra.Command, c *api.Client, job *structs.Job, w *api.WriteOptions) (*structs.JobRegisterResponse, error) {
	f := cmd.Flags().Lookup(checkIndexFlag)
	if f == nil || !f.Changed {
		resp, _, err := c.Jobs().Register(job, w)
		return resp, err
	}
	index, err := strconv.ParseUint(f.Value.String(), 10, 64)
	if err != nil {
		return nil, usageErrorf("invalid -check-index %q: %v", f.Value.String(), err)
	}
	resp, _, err := c.Jobs().RegisterCheckIndex(job, index, w)
	if api.IsConflict(err) {
		if index == 0 {
			return nil, fmt.Errorf("job %q already exists and -check-index 0 means it must not: run 'berth job plan' again: %w", job.ID, err)
		}
		return nil, fmt.Errorf("job %q changed since index %d (or does not exist): run 'berth job plan' again: %w", job.ID, index, err)
	}
	return resp, err
}

// writePlanGroups lists the task groups and their intended updates, for a
// response without a diff.
func writePlanGroups(w io.Writer, job *structs.Job, updates map[string]*structs.DesiredUpdates) {
	fmt.Fprintf(w, "Job: %q\n", job.ID)
	groups := map[string]bool{}
	for _, tg := range job.TaskGroups {
		if tg != nil {
			groups[tg.Name] = true
		}
	}
	for tg := range updates {
		groups[tg] = true
	}
	names := make([]string, 0, len(groups))
	for tg := range groups {
		names = append(names, tg)
	}
	sort.Strings(names)
	for _, tg := range names {
		fmt.Fprintf(w, "Task Group: %q (%s)\n", tg, desiredUpdatesLine(updates[tg]))
	}
}
