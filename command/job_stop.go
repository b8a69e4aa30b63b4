package command

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// jobStopResult is `berth job stop -json`.
type jobStopResult struct {
	JobID           string
	Namespace       string
	Purged          bool
	EvalID          string
	EvalCreateIndex uint64
	JobModifyIndex  uint64
	Evaluation      *structs.Evaluation `json:",omitempty"`
}

func newJobStopCommand(g *globals) *cobra.Command {
	var (
		purge, detach bool
		mon           = evalMonitor{timeout: defaultMonitorTimeout, poll: defaultMonitorPoll}
	)
	cmd := &cobra.Command{
		Use:   "stop [-purge] JOB",
		Short: "Stop a running job",
		Long: `Stop the job with the given ID (or unique ID prefix): its allocations are
stopped. With -purge the job is also removed from the cluster state.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := (&api.QueryOptions{}).WithContext(cmd.Context())
			job, err := resolveJob(c, args[0], q)
			if err != nil {
				return err
			}
			w := (&api.WriteOptions{Namespace: job.Namespace}).WithContext(cmd.Context())
			resp, _, err := c.Jobs().Deregister(job.ID, purge, w)
			if err != nil {
				return fmt.Errorf("stop job %q: %w", job.ID, err)
			}
			out := cmd.OutOrStdout()
			res := jobStopResult{
				JobID: job.ID, Namespace: job.Namespace, Purged: purge,
				EvalID: resp.EvalID, EvalCreateIndex: resp.EvalCreateIndex, JobModifyIndex: resp.JobModifyIndex,
			}
			if !g.json {
				verb := "stopped"
				if purge {
					verb = "stopped and purged"
				}
				fmt.Fprintf(out, "Job %q %s\n", job.ID, verb)
				if resp.EvalID != "" {
					fmt.Fprintf(out, "Evaluation ID: %s\n", resp.EvalID)
				}
			}
			var evalErr error
			if !detach && resp.EvalID != "" {
				mon.client = c
				ev, err := mon.wait(cmd.Context(), resp.EvalID, job.Namespace, resp.EvalCreateIndex)
				if err != nil {
					return err
				}
				res.Evaluation = ev
				if !g.json {
					evalErr = printEvalOutcome(out, resp.EvalID, ev)
				} else if ev != nil && ev.Status == structs.EvalStatusFailed {
					evalErr = fmt.Errorf("evaluation %q failed", resp.EvalID)
				}
			}
			if g.json {
				if err := writeJSON(out, res); err != nil {
					return err
				}
			}
			return evalErr
		},
	}
	f := cmd.Flags()
	f.BoolVar(&purge, "purge", false, "also remove the job from the cluster state")
	f.BoolVar(&detach, "detach", false, "return without waiting for the evaluation")
	f.DurationVar(&mon.timeout, "monitor-timeout", defaultMonitorTimeout, "how long to wait for the evaluation")
	_ = f.MarkHidden("monitor-timeout")
	return cmd
}
