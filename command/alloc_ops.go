package command

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newAllocStopCommand(g *globals) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "stop [-detach] ALLOC",
		Short: "Stop an allocation; its job places a replacement",
		Long: `Stop an allocation (by ID or unique ID prefix). As in Nomad the scheduler
stops it and places a replacement (possibly on the same node).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			a, err := resolveAlloc(c, args[0], (&api.QueryOptions{}).WithContext(cmd.Context()))
			if err != nil {
				return err
			}
			resp, _, err := c.Allocations().Stop(a.ID, (&api.WriteOptions{Namespace: a.Namespace}).WithContext(cmd.Context()))
			if err != nil {
				return fmt.Errorf("stop allocation %q: %w", a.ID, err)
			}
			out := cmd.OutOrStdout()
			if g.json {
				return writeJSON(out, resp)
			}
			fmt.Fprintf(out, "Allocation %q stopped; evaluation %q places its replacement\n", a.ID, resp.EvalID)
			_ = detach // the evaluation is not monitored: `berth eval status` shows it
			return nil
		},
	}
	cmd.Flags().BoolVar(&detach, "detach", false, "return without waiting (the default: accepted for Nomad compatibility)")
	return cmd
}

func newAllocSignalCommand(g *globals) *cobra.Command {
	var signal, task string
	cmd := &cobra.Command{
		Use:   "signal [-s SIGNAL] [-task TASK] ALLOC [TASK]",
		Short: "Send a signal to the tasks of an allocation",
		Long:  `Send a signal (default SIGKILL, as Nomad) to one task of an allocation, or to all of them.`,
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				if task != "" && task != args[1] {
					return usageErrorf("task given twice: -task %q and %q", task, args[1])
				}
				task = args[1]
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			a, err := resolveAlloc(c, args[0], (&api.QueryOptions{}).WithContext(cmd.Context()))
			if err != nil {
				return err
			}
			if task != "" {
				if err := checkTask(a, task); err != nil {
					return err
				}
			}
			if err := c.Allocations().Signal(a.ID, task, signal, (&api.WriteOptions{Namespace: a.Namespace}).WithContext(cmd.Context())); err != nil {
				return fmt.Errorf("signal allocation %q: %w", a.ID, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Signal %s sent to allocation %q\n", signal, shortID(a.ID, false))
			return nil
		},
	}
	cmd.Flags().StringVar(&signal, "s", "SIGKILL", "the signal to send")
	cmd.Flags().StringVar(&task, "task", "", "the task to signal (default: all)")
	return cmd
}

func newAllocRestartCommand(g *globals) *cobra.Command {
	var task string
	var allTasks bool
	cmd := &cobra.Command{
		Use:   "restart [-task TASK] [-all-tasks] ALLOC [TASK]",
		Short: "Restart the tasks of an allocation in place",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				if task != "" && task != args[1] {
					return usageErrorf("task given twice: -task %q and %q", task, args[1])
				}
				task = args[1]
			}
			if task != "" && allTasks {
				return usageErrorf("-all-tasks restarts every task: do not name one")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			a, err := resolveAlloc(c, args[0], (&api.QueryOptions{}).WithContext(cmd.Context()))
			if err != nil {
				return err
			}
			if task != "" {
				if err := checkTask(a, task); err != nil {
					return err
				}
			}
			if err := c.Allocations().Restart(a.ID, task, allTasks, (&api.WriteOptions{Namespace: a.Namespace}).WithContext(cmd.Context())); err != nil {
				return fmt.Errorf("restart allocation %q: %w", a.ID, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Allocation %q restarted\n", shortID(a.ID, false))
			return nil
		},
	}
	cmd.Flags().StringVar(&task, "task", "", "the task to restart (default: the running tasks)")
	cmd.Flags().BoolVar(&allTasks, "all-tasks", false, "restart every task, prestart ones included")
	return cmd
}

func rangeArgs(minN, maxN int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < minN || len(args) > maxN {
			return usageErrorf("%s takes %d to %d arguments, got %d", cmd.CommandPath(), minN, maxN, len(args))
		}
		return nil
	}
}

// allocTasks lists the names of the allocation's tasks.
func allocTasks(a *structs.Allocation) []string {
	var names []string
	if a.Job != nil {
		if tg := a.Job.LookupTaskGroup(a.TaskGroup); tg != nil {
			for _, t := range tg.Tasks {
				names = append(names, t.Name)
			}
		}
	}
	if len(names) == 0 {
		for name := range a.TaskStates {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func checkTask(a *structs.Allocation, task string) error {
	names := allocTasks(a)
	if len(names) == 0 {
		return nil // nothing to check against
	}
	for _, n := range names {
		if n == task {
			return nil
		}
	}
	return fmt.Errorf("allocation %s has no task %q (tasks: %s)", a.ID, task, joinOrNone(names))
}

// pickTask returns the task named, or the allocation's only task.
func pickTask(a *structs.Allocation, task string) (string, error) {
	if task != "" {
		return task, checkTask(a, task)
	}
	names := allocTasks(a)
	if len(names) == 1 {
		return names[0], nil
	}
	return "", usageErrorf("allocation %s has %d tasks (%s): name one", shortID(a.ID, false), len(names), joinOrNone(names))
}
