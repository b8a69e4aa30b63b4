package command

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/jobspec"
	"github.com/berth-dev/berth/structs"
)

// jobRunResult is `berth job run -json`.
type jobRunResult struct {
	JobID           string
	Namespace       string
	EvalID          string
	EvalCreateIndex uint64
	JobModifyIndex  uint64
	Warnings        []string
	// Evaluation is the evaluation as last seen (absent with -detach).
	Evaluation *structs.Evaluation `json:",omitempty"`
}

func newJobRunCommand(g *globals) *cobra.Command {
	var (
		vars, varFiles []string
		detach         bool
		mon            = evalMonitor{timeout: defaultMonitorTimeout, poll: defaultMonitorPoll}
	)
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Submit a job file",
		Long: `Parse the job file (Nomad HCL or JSON), register the job and print the ID of
the evaluation that schedules it. Unless -detach is given, wait a few seconds
for a scheduler to process the evaluation and report the outcome; a cluster
without a scheduler just leaves it pending, which is not an error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, warnings, err := jobspec.ParseFile(args[0], jobspec.Options{Vars: vars, VarFiles: varFiles})
			if err != nil {
				return fmt.Errorf("parse job file: %w", err)
			}
			errOut, out := cmd.ErrOrStderr(), cmd.OutOrStdout()
			if !g.json {
				for _, w := range warnings {
					fmt.Fprintf(errOut, "Warning: %s\n", w)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			// The job file's namespace wins over -namespace, as in Nomad.
			if job.Namespace == "" {
				job.Namespace = g.effectiveNamespace()
			}
			w := (&api.WriteOptions{Namespace: job.Namespace}).WithContext(cmd.Context())
			resp, err := registerJob(cmd, c, job, w)
			if err != nil {
				return fmt.Errorf("register job %q: %w", job.ID, err)
			}
			res := jobRunResult{
				JobID:           job.ID,
				Namespace:       job.Namespace,
				EvalID:          resp.EvalID,
				EvalCreateIndex: resp.EvalCreateIndex,
				JobModifyIndex:  resp.JobModifyIndex,
				Warnings:        warnings,
			}
			if resp.Warnings != "" {
				res.Warnings = append(res.Warnings, resp.Warnings)
				if !g.json {
					fmt.Fprintf(errOut, "Warning: %s\n", resp.Warnings)
				}
			}
			if !g.json {
				fmt.Fprintf(out, "Job %q registered\n", job.ID)
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
				if g.json {
					if ev != nil && ev.Status == structs.EvalStatusFailed {
						evalErr = fmt.Errorf("evaluation %q failed", resp.EvalID)
					}
				} else {
					evalErr = printEvalOutcome(out, resp.EvalID, ev)
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
	f.StringArrayVar(&vars, "var", nil, "set a job file variable: name=value (repeatable)")
	f.StringArrayVar(&varFiles, "var-file", nil, "read job file variables from a file (repeatable)")
	f.BoolVar(&detach, "detach", false, "return after registering, without waiting for the evaluation")
	f.DurationVar(&mon.timeout, "monitor-timeout", defaultMonitorTimeout, "how long to wait for the evaluation")
	_ = f.MarkHidden("monitor-timeout")
	addCheckIndexFlag(cmd)
	return cmd
}
