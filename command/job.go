package command

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newJobCommand(g *globals) *cobra.Command {
	job := groupCommand("job", "Submit, inspect and stop jobs")
	job.AddCommand(
		newJobRunCommand(g),
		newJobPlanCommand(g),
		newJobStatusCommand(g),
		newJobStopCommand(g),
		newJobValidateCommand(g),
		newJobInspectCommand(g),
		newJobInitCommand(g),
	)
	return job
}

// resolveJob returns the job with ID id, or the only job whose ID starts
// with id.
func resolveJob(c *api.Client, id string, q *api.QueryOptions) (*structs.Job, error) {
	return resolveByPrefix("job", id, q,
		func(id string, q *api.QueryOptions) (*structs.Job, error) {
			j, _, err := c.Jobs().Info(id, q)
			return j, err
		},
		func(q *api.QueryOptions) ([]prefixMatch, error) {
			jobs, _, err := c.Jobs().List(q)
			m := make([]prefixMatch, len(jobs))
			for i, j := range jobs {
				m[i] = prefixMatch{id: j.ID, namespace: j.Namespace}
			}
			return m, err
		})
}

// evalMonitor waits for an evaluation to leave "pending".
type evalMonitor struct {
	client *api.Client
	// timeout bounds the whole wait; poll is the pause between reads when
	// the server answers without blocking.
	timeout time.Duration
	poll    time.Duration
}

const (
	defaultMonitorTimeout = 3 * time.Second
	defaultMonitorPoll    = 250 * time.Millisecond
)

// wait returns the evaluation once it is no longer pending, or the last
// version read (possibly nil, if it never became visible) when the timeout
// passes first: with no scheduler running, an evaluation stays pending and
// that is not an error. Only a failed API call is.
func (m evalMonitor) wait(ctx context.Context, evalID string, namespace string, index uint64) (*structs.Evaluation, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	var last *structs.Evaluation
	for {
		remaining := time.Until(deadlineOf(ctx))
		if remaining <= 0 {
			return last, nil
		}
		q := (&api.QueryOptions{Namespace: namespace, WaitIndex: index, WaitTime: remaining}).WithContext(ctx)
		ev, qm, err := m.client.Evaluations().Info(evalID, q)
		switch {
		case err == nil:
			last = ev
			if ev.Status != structs.EvalStatusPending {
				return ev, nil
			}
		case api.IsNotFound(err):
			// Not visible yet; try again.
		case ctx.Err() != nil:
			return last, nil
		default:
			return last, fmt.Errorf("get evaluation %q: %w", evalID, err)
		}
		if qm != nil && qm.LastIndex > index {
			index = qm.LastIndex
			continue
		}
		// The server did not block (or the eval is not there yet): pause.
		select {
		case <-ctx.Done():
			return last, nil
		case <-time.After(m.poll):
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Hour)
	}
	return d
}

// printEvalOutcome tells what became of a monitored evaluation; it returns
// an error when the evaluation failed.
func printEvalOutcome(w io.Writer, evalID string, ev *structs.Evaluation) error {
	if ev == nil || ev.Status == structs.EvalStatusPending || ev.Status == structs.EvalStatusBlocked && len(ev.FailedTGAllocs) == 0 {
		status := "pending"
		if ev != nil {
			status = ev.Status
		}
		fmt.Fprintf(w, "Evaluation %q is %s (not yet processed by a scheduler)\n", evalID, status)
		return nil
	}
	fmt.Fprintf(w, "Evaluation status: %s\n", ev.Status)
	if ev.StatusDescription != "" {
		fmt.Fprintf(w, "  %s\n", ev.StatusDescription)
	}
	if len(ev.FailedTGAllocs) > 0 {
		groups := make([]string, 0, len(ev.FailedTGAllocs))
		for tg := range ev.FailedTGAllocs {
			groups = append(groups, tg)
		}
		sort.Strings(groups)
		fmt.Fprintln(w, "Placement failures:")
		for _, tg := range groups {
			m := ev.FailedTGAllocs[tg]
			fmt.Fprintf(w, "  Task group %q: %d allocation(s) not placed (%d nodes evaluated, %d filtered, %d exhausted)\n",
				tg, 1+m.CoalescedFailures, m.NodesEvaluated, m.NodesFiltered, m.NodesExhausted)
		}
	}
	if ev.Status == structs.EvalStatusFailed {
		return fmt.Errorf("evaluation %q failed", evalID)
	}
	return nil
}
