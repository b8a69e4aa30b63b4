package command

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// Pure formatting of what the scheduler says about its decisions: the
// placement metrics of an allocation or of a failed placement, and the
// desired updates of a plan. Shared by job plan, job status, eval status
// and alloc status.

// countedName is one "N things" entry of a metric map.
type countedName struct {
	name  string
	count int
}

// sortedCounts returns the entries of m with a positive count, the
// largest first, ties by name, so output is stable.
func sortedCounts(m map[string]int) []countedName {
	out := make([]countedName, 0, len(m))
	for k, v := range m {
		if v > 0 {
			out = append(out, countedName{k, v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		return out[i].name < out[j].name
	})
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// placementExplanation lists, one line each, why allocations could not be
// placed (or what ruled nodes out of a placement): "N nodes filtered by
// constraint X", "N nodes exhausted on memory", and so on.
func placementExplanation(m *structs.AllocMetric) []string {
	if m == nil {
		return nil
	}
	var lines []string
	if m.NodesEvaluated == 0 {
		if m.NodePool != "" && m.NodesInPool == 0 {
			lines = append(lines, fmt.Sprintf("No nodes in node pool %q", m.NodePool))
		} else {
			lines = append(lines, "No nodes were eligible for evaluation")
		}
	}
	dcs := make([]string, 0, len(m.NodesAvailable))
	for dc, n := range m.NodesAvailable {
		if n == 0 {
			dcs = append(dcs, dc)
		}
	}
	sort.Strings(dcs)
	for _, dc := range dcs {
		lines = append(lines, fmt.Sprintf("No nodes are available in datacenter %q", dc))
	}
	for _, c := range sortedCounts(m.ClassFiltered) {
		lines = append(lines, fmt.Sprintf("%s filtered by class %q", plural(c.count, "node", "nodes"), c.name))
	}
	for _, c := range sortedCounts(m.ConstraintFiltered) {
		lines = append(lines, fmt.Sprintf("%s filtered by constraint %s", plural(c.count, "node", "nodes"), c.name))
	}
	if m.NodesExhausted > 0 {
		lines = append(lines, fmt.Sprintf("%s exhausted", plural(m.NodesExhausted, "node", "nodes")))
	}
	for _, c := range sortedCounts(m.ClassExhausted) {
		lines = append(lines, fmt.Sprintf("%s of class %q exhausted", plural(c.count, "node", "nodes"), c.name))
	}
	for _, c := range sortedCounts(m.DimensionExhausted) {
		lines = append(lines, fmt.Sprintf("%s exhausted on %s", plural(c.count, "node", "nodes"), c.name))
	}
	for _, q := range m.QuotaExhausted {
		lines = append(lines, fmt.Sprintf("Quota limit hit %q", q))
	}
	return lines
}

// writeFailedPlacements prints the placement failures of each task group,
// sorted by group:
//
//	Task Group "web" (failed to place 3 allocations):
//	  * 2 nodes filtered by constraint ${attr.kernel.name} = windows
func writeFailedPlacements(w io.Writer, failed map[string]*structs.AllocMetric, indent string) {
	groups := make([]string, 0, len(failed))
	for tg := range failed {
		groups = append(groups, tg)
	}
	sort.Strings(groups)
	for _, tg := range groups {
		m := failed[tg]
		n := 1
		if m != nil {
			n += m.CoalescedFailures
		}
		fmt.Fprintf(w, "%sTask Group %q (failed to place %s):\n", indent, tg, plural(n, "allocation", "allocations"))
		for _, line := range placementExplanation(m) {
			fmt.Fprintf(w, "%s  * %s\n", indent, line)
		}
	}
}

// failedPlacementCount is how many allocations failed to place in all.
func failedPlacementCount(failed map[string]*structs.AllocMetric) int {
	n := 0
	for _, m := range failed {
		n++
		if m != nil {
			n += m.CoalescedFailures
		}
	}
	return n
}

// metricSummary is the counts of a placement, as key/value lines.
func metricSummary(m *structs.AllocMetric) []kv {
	pairs := []kv{
		{"Nodes Evaluated", fmt.Sprint(m.NodesEvaluated)},
		{"Nodes Filtered", fmt.Sprint(m.NodesFiltered)},
		{"Nodes Exhausted", fmt.Sprint(m.NodesExhausted)},
	}
	if m.NodePool != "" || m.NodesInPool > 0 {
		pairs = append(pairs, kv{"Nodes In Pool", fmt.Sprintf("%d (%s)", m.NodesInPool, orNone(m.NodePool))})
	}
	if len(m.NodesAvailable) > 0 {
		dcs := make([]string, 0, len(m.NodesAvailable))
		for dc, n := range m.NodesAvailable {
			dcs = append(dcs, fmt.Sprintf("%s=%d", dc, n))
		}
		sort.Strings(dcs)
		pairs = append(pairs, kv{"Nodes Available", strings.Join(dcs, ", ")})
	}
	if m.AllocationTime > 0 {
		pairs = append(pairs, kv{"Allocation Time", m.AllocationTime.String()})
	}
	return pairs
}

// scoreTable is the per-node scores of a placement: one row per node, the
// best (highest final score) first; one column per scorer, sorted, then
// the final score.
func scoreTable(meta []*structs.NodeScoreMeta, verbose bool) ([]string, [][]string) {
	if len(meta) == 0 {
		return nil, nil
	}
	names := map[string]bool{}
	for _, sm := range meta {
		if sm == nil {
			continue
		}
		for k := range sm.Scores {
			names[k] = true
		}
	}
	cols := make([]string, 0, len(names))
	for k := range names {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	sorted := make([]*structs.NodeScoreMeta, 0, len(meta))
	for _, sm := range meta {
		if sm != nil {
			sorted = append(sorted, sm)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].NormScore != sorted[j].NormScore {
			return sorted[i].NormScore > sorted[j].NormScore
		}
		return sorted[i].NodeID < sorted[j].NodeID
	})
	header := append(append([]string{"Node"}, cols...), "final score")
	rows := make([][]string, 0, len(sorted))
	for _, sm := range sorted {
		row := []string{shortID(sm.NodeID, verbose)}
		for _, c := range cols {
			if v, ok := sm.Scores[c]; ok {
				row = append(row, formatScore(v))
			} else {
				row = append(row, "0")
			}
		}
		rows = append(rows, append(row, formatScore(sm.NormScore)))
	}
	return header, rows
}

func formatScore(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	if s == "-0" {
		return "0"
	}
	return s
}

// writePlacementMetrics prints everything an allocation's metrics say:
// counts, per-constraint and per-dimension lines, and the score table.
func writePlacementMetrics(w io.Writer, m *structs.AllocMetric, verbose bool) error {
	if m == nil {
		fmt.Fprintln(w, "No placement metrics")
		return nil
	}
	if err := writeKV(w, metricSummary(m)); err != nil {
		return err
	}
	for _, line := range placementExplanation(m) {
		fmt.Fprintf(w, "  * %s\n", line)
	}
	header, rows := scoreTable(m.ScoreMetaData, verbose)
	if len(rows) > 0 {
		fmt.Fprintln(w)
		return writeTable(w, header, rows)
	}
	return nil
}

// desiredUpdatesLine summarises one task group of a plan:
// "3 create, 1 destroy, 2 in-place update".
func desiredUpdatesLine(u *structs.DesiredUpdates) string {
	if u == nil {
		return "no changes"
	}
	var parts []string
	add := func(n uint64, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(u.Place, "create")
	add(u.Stop, "destroy")
	add(u.Migrate, "migrate")
	add(u.InPlaceUpdate, "in-place update")
	add(u.DestructiveUpdate, "create/destroy update")
	add(u.Canary, "canary")
	add(u.Preemptions, "preemption")
	add(u.Ignore, "ignore")
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

// latestEval is the evaluation created last (highest CreateIndex), or nil.
func latestEval(evals []*structs.Evaluation) *structs.Evaluation {
	var latest *structs.Evaluation
	for _, e := range evals {
		if e != nil && (latest == nil || e.CreateIndex > latest.CreateIndex) {
			latest = e
		}
	}
	return latest
}

// writeJobPlacementFailures prints, for job status, the placement failures
// of the job's latest evaluation, if it has any. The blocked eval that
// waits for capacity keeps the failures of the eval that created it, so
// the latest non-blocked eval with failures is the one reported when the
// latest is a blocked one without metrics.
func writeJobPlacementFailures(w io.Writer, evals []*structs.Evaluation) {
	e := latestEval(evals)
	if e == nil {
		return
	}
	if len(e.FailedTGAllocs) == 0 && e.Status == structs.EvalStatusBlocked && e.PreviousEval != "" {
		for _, p := range evals {
			if p != nil && p.ID == e.PreviousEval {
				e = p
				break
			}
		}
	}
	if len(e.FailedTGAllocs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nPlacement Failure")
	writeFailedPlacements(w, e.FailedTGAllocs, "")
}
