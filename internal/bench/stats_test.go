package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// summary describes a set of latencies.
type summary struct {
	N              int
	Min, Max, Mean time.Duration
	P50, P90, P99  time.Duration
}

// summarize sorts a copy of ds and computes its summary; p99 of 20
// samples is the maximum (nearest rank).
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	return summary{
		N:    len(sorted),
		Min:  sorted[0],
		Max:  sorted[len(sorted)-1],
		Mean: sum / time.Duration(len(sorted)),
		P50:  percentile(sorted, 50),
		P90:  percentile(sorted, 90),
		P99:  percentile(sorted, 99),
	}
}

// percentile returns the nearest-rank p-th percentile of an ascending
// slice: the smallest sample with at least p% of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms converts a duration to fractional milliseconds for ReportMetric.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s summary) String() string {
	return fmt.Sprintf("n=%d min=%.1fms p50=%.1fms p90=%.1fms p99=%.1fms max=%.1fms mean=%.1fms",
		s.N, ms(s.Min), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), ms(s.Mean))
}
