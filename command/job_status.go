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

// jobStatusResult is `berth job status -json JOB`.
type jobStatusResult struct {
	Job         *structs.Job
	Summary     *structs.JobSummary `json:",omitempty"`
	Allocations []*structs.AllocListStub
	Evaluations []*structs.Evaluation
}

func newJobStatusCommand(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "status [JOB]",
		Short: "List jobs, or show one job",
		Long: `Without an argument, list the jobs of the namespace (-namespace "*" for all).
With a job ID (or unique ID prefix), show the job, its allocations and its
evaluations.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return runJobStatus(cmd, g, args[0], verbose)
			}
			return runJobList(cmd, g)
		},
	}
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show full IDs")
	return cmd
}

func runJobList(cmd *cobra.Command, g *globals) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	jobs, _, err := c.Jobs().List((&api.QueryOptions{}).WithContext(cmd.Context()))
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	sort.Slice(jobs, func(i, j int) bool {
		if jobs[i].Namespace != jobs[j].Namespace {
			return jobs[i].Namespace < jobs[j].Namespace
		}
		return jobs[i].ID < jobs[j].ID
	})
	out := cmd.OutOrStdout()
	if g.json {
		return writeJSON(out, jobs)
	}
	if len(jobs) == 0 {
		fmt.Fprintln(out, "No running jobs")
		return nil
	}
	allNS := g.effectiveNamespace() == structs.AllNamespacesSentinel
	header, rows := jobListTable(jobs, allNS)
	return writeTable(out, header, rows)
}

func jobListTable(jobs []*structs.JobListStub, withNamespace bool) ([]string, [][]string) {
	header := []string{"ID", "Type", "Priority", "Status", "Submit Date"}
	if withNamespace {
		header = append([]string{"ID", "Namespace"}, header[1:]...)
	}
	rows := make([][]string, 0, len(jobs))
	for _, j := range jobs {
		row := []string{j.ID, j.Type, fmt.Sprint(j.Priority), jobStubStatus(j), formatUnixNano(j.SubmitTime)}
		if withNamespace {
			row = append([]string{j.ID, j.Namespace}, row[1:]...)
		}
		rows = append(rows, row)
	}
	return header, rows
}

func jobStubStatus(j *structs.JobListStub) string {
	if j.Stop && j.Status != structs.JobStatusDead {
		return j.Status + " (stopped)"
	}
	return j.Status
}

func runJobStatus(cmd *cobra.Command, g *globals, id string, verbose bool) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	q := (&api.QueryOptions{}).WithContext(cmd.Context())
	job, err := resolveJob(c, id, q)
	if err != nil {
		return err
	}
	jq := *q
	if job.Namespace != "" {
		jq.Namespace = job.Namespace
	}
	res := jobStatusResult{Job: job}
	res.Summary, _, err = c.Jobs().Summary(job.ID, &jq)
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("get job summary %q: %w", job.ID, err)
	}
	if res.Allocations, _, err = c.Jobs().Allocations(job.ID, &jq); err != nil {
		return fmt.Errorf("list allocations of job %q: %w", job.ID, err)
	}
	if res.Evaluations, _, err = c.Jobs().Evaluations(job.ID, &jq); err != nil {
		return fmt.Errorf("list evaluations of job %q: %w", job.ID, err)
	}
	sort.Slice(res.Allocations, func(i, j int) bool { return res.Allocations[i].CreateIndex > res.Allocations[j].CreateIndex })
	sort.Slice(res.Evaluations, func(i, j int) bool { return res.Evaluations[i].CreateIndex > res.Evaluations[j].CreateIndex })
	if res.Allocations == nil {
		res.Allocations = []*structs.AllocListStub{}
	}
	if res.Evaluations == nil {
		res.Evaluations = []*structs.Evaluation{}
	}

	out := cmd.OutOrStdout()
	if g.json {
		return writeJSON(out, res)
	}
	return printJobStatus(out, &res, verbose, time.Now())
}

func printJobStatus(w io.Writer, res *jobStatusResult, verbose bool, now time.Time) error {
	j := res.Job
	if err := writeKV(w, []kv{
		{"ID", j.ID},
		{"Name", j.Name},
		{"Submit Date", formatUnixNano(j.SubmitTime)},
		{"Type", j.Type},
		{"Priority", fmt.Sprint(j.Priority)},
		{"Datacenters", joinOrNone(j.Datacenters)},
		{"Namespace", orNone(j.Namespace)},
		{"Node Pool", orNone(j.NodePool)},
		{"Status", jobStatus(j)},
		{"Version", fmt.Sprint(j.Version)},
	}); err != nil {
		return err
	}

	if res.Summary != nil && len(res.Summary.Summary) > 0 {
		fmt.Fprintln(w, "\nSummary")
		if err := writeTable(w, summaryHeader, summaryRows(res.Summary)); err != nil {
			return err
		}
	}
	writeJobPlacementFailures(w, res.Evaluations)

	fmt.Fprintln(w, "\nAllocations")
	if len(res.Allocations) == 0 {
		fmt.Fprintln(w, "No allocations placed")
	} else if err := writeTable(w, allocHeader, allocRows(res.Allocations, verbose, now)); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nEvaluations")
	if len(res.Evaluations) == 0 {
		fmt.Fprintln(w, "No evaluations")
		return nil
	}
	return writeTable(w, evalHeader, evalRows(res.Evaluations, verbose))
}

func jobStatus(j *structs.Job) string {
	if j.Stop && j.Status != structs.JobStatusDead {
		return j.Status + " (stopped)"
	}
	return j.Status
}

var summaryHeader = []string{"Task Group", "Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown"}

func summaryRows(s *structs.JobSummary) [][]string {
	groups := make([]string, 0, len(s.Summary))
	for tg := range s.Summary {
		groups = append(groups, tg)
	}
	sort.Strings(groups)
	rows := make([][]string, 0, len(groups))
	for _, tg := range groups {
		c := s.Summary[tg]
		rows = append(rows, []string{tg,
			fmt.Sprint(c.Queued), fmt.Sprint(c.Starting), fmt.Sprint(c.Running), fmt.Sprint(c.Failed),
			fmt.Sprint(c.Complete), fmt.Sprint(c.Lost), fmt.Sprint(c.Unknown)})
	}
	return rows
}

var allocHeader = []string{"ID", "Node ID", "Task Group", "Version", "Desired", "Status", "Created", "Modified"}

func allocRows(allocs []*structs.AllocListStub, verbose bool, now time.Time) [][]string {
	rows := make([][]string, 0, len(allocs))
	for _, a := range allocs {
		rows = append(rows, []string{
			shortID(a.ID, verbose), orNone(shortID(a.NodeID, verbose)), a.TaskGroup, fmt.Sprint(a.JobVersion),
			a.DesiredStatus, a.ClientStatus, formatAge(a.CreateTime, now), formatAge(a.ModifyTime, now),
		})
	}
	return rows
}

var evalHeader = []string{"ID", "Priority", "Triggered By", "Status", "Placement Failures"}

func evalRows(evals []*structs.Evaluation, verbose bool) [][]string {
	rows := make([][]string, 0, len(evals))
	for _, e := range evals {
		rows = append(rows, []string{
			shortID(e.ID, verbose), fmt.Sprint(e.Priority), e.TriggeredBy, e.Status, fmt.Sprint(len(e.FailedTGAllocs) > 0),
		})
	}
	return rows
}
