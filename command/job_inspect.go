package command

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
)

func newJobInspectCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect JOB",
		Short: "Print a job as JSON",
		Long: `Print the job with the given ID (or unique ID prefix) as the JSON the API
serves, wrapped as {"Job": ...} so that the output can be fed back to
"berth job run". The output is JSON with or without -json.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			job, err := resolveJob(c, args[0], (&api.QueryOptions{}).WithContext(cmd.Context()))
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), map[string]any{"Job": job})
		},
	}
}
