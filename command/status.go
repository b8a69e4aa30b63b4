package command

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// clusterStatus is `berth status -json`.
type clusterStatus struct {
	Address     string
	Leader      string
	KnownLeader bool
	Peers       []string
	Jobs        int
	JobStatus   map[string]int
	Nodes       int
	NodeStatus  map[string]int
}

func newStatusCommand(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "status [JOB]",
		Short: "Show the cluster's state, or a job's",
		Long: `Without an argument, status shows the cluster: its Raft leader and peers and
how many jobs and nodes it has. It exits 1 when the cluster has no leader.
With a job ID (or ID prefix), it is "berth job status JOB".`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return runJobStatus(cmd, g, args[0], verbose)
			}
			return runClusterStatus(cmd, g)
		},
	}
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show full IDs")
	return cmd
}

func runClusterStatus(cmd *cobra.Command, g *globals) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	st := clusterStatus{Address: c.Address(), JobStatus: map[string]int{}, NodeStatus: map[string]int{}}

	st.Leader, err = c.Status().Leader()
	if err != nil {
		return fmt.Errorf("get leader: %w", err)
	}
	st.KnownLeader = st.Leader != ""
	if st.Peers, err = c.Status().Peers(); err != nil {
		return fmt.Errorf("get peers: %w", err)
	}
	sort.Strings(st.Peers)

	// Stale reads: the overview should work, and show what it can, even
	// while the cluster has no leader.
	q := (&api.QueryOptions{AllowStale: true, Namespace: structs.AllNamespacesSentinel}).WithContext(cmd.Context())
	jobs, _, err := c.Jobs().List(q)
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	st.Jobs = len(jobs)
	for _, j := range jobs {
		st.JobStatus[j.Status]++
	}
	nodes, _, err := c.Nodes().List((&api.QueryOptions{AllowStale: true}).WithContext(cmd.Context()))
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	st.Nodes = len(nodes)
	for _, n := range nodes {
		st.NodeStatus[n.Status]++
	}

	out := cmd.OutOrStdout()
	if g.json {
		if err := writeJSON(out, st); err != nil {
			return err
		}
	} else {
		leader := st.Leader
		if leader == "" {
			leader = "<none>"
		}
		if err := writeKV(out, []kv{
			{"Address", st.Address},
			{"Leader", leader},
			{"Peers", fmt.Sprintf("%d (%s)", len(st.Peers), joinOrNone(st.Peers))},
			{"Jobs", countsLine(st.Jobs, st.JobStatus)},
			{"Nodes", countsLine(st.Nodes, st.NodeStatus)},
		}); err != nil {
			return err
		}
	}
	if !st.KnownLeader {
		return errors.New("the cluster has no leader")
	}
	return nil
}

// countsLine renders "3 (2 running, 1 pending)".
func countsLine(total int, by map[string]int) string {
	if total == 0 {
		return "0"
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", by[k], orNone(k)))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
