package command

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/jobspec"
	"github.com/berth-dev/berth/structs"
)

// jobValidateResult is `berth job validate -json`.
type jobValidateResult struct {
	Valid    bool
	Errors   []string
	Warnings []string
}

// validator is what a job offers to check itself. structs.Job grows its
// Validate method alongside the jobspec work; until then, validation is
// parsing only.
type validator interface{ Validate() error }

// validateJob returns every problem with the job, one error each.
func validateJob(job *structs.Job) []error {
	v, ok := any(job).(validator)
	if !ok {
		return nil
	}
	return flattenErrors(v.Validate())
}

// flattenErrors unpacks errors.Join trees into their leaves.
func flattenErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}

func newJobValidateCommand(g *globals) *cobra.Command {
	var vars, varFiles []string
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a job file without submitting it",
		Long: `Parse the job file and validate the job locally, without contacting a cluster.
Every problem is reported; the exit code is 1 when there is any.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			res := jobValidateResult{Errors: []string{}, Warnings: []string{}}
			job, warnings, err := jobspec.ParseFile(args[0], jobspec.Options{Vars: vars, VarFiles: varFiles})
			res.Warnings = append(res.Warnings, warnings...)
			var problems []error
			if err != nil {
				problems = flattenErrors(err)
			} else {
				problems = validateJob(job)
			}
			for _, p := range problems {
				res.Errors = append(res.Errors, p.Error())
			}
			res.Valid = len(res.Errors) == 0

			if g.json {
				if err := writeJSON(out, res); err != nil {
					return err
				}
				if !res.Valid {
					return silentError{}
				}
				return nil
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %s\n", w)
			}
			if res.Valid {
				fmt.Fprintln(out, "Job validation successful")
				return nil
			}
			errOut := cmd.ErrOrStderr()
			fmt.Fprintf(errOut, "Job validation failed: %d error(s):\n", len(res.Errors))
			for _, e := range res.Errors {
				fmt.Fprintf(errOut, "  * %s\n", e)
			}
			return silentError{}
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&vars, "var", nil, "set a job file variable: name=value (repeatable)")
	f.StringArrayVar(&varFiles, "var-file", nil, "read job file variables from a file (repeatable)")
	return cmd
}
