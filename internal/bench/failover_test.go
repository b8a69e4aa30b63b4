package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	failoverRequestTimeout = 500 * time.Millisecond
	failoverBound          = 30 * time.Second
	// failoverMinGap spaces attempts that fail fast (connection refused,
	// 5xx) so the loop does not spin on a shared machine.
	failoverMinGap = 2 * time.Millisecond
	stableTimeout  = 60 * time.Second
)

// BenchmarkLeaderFailover kills the leader of a three-process cluster
// with SIGKILL and measures how long until a job registration sent to a
// survivor succeeds, then restarts the killed server and repeats.
// Servers run with the production Raft timings (DefaultConfig).
func BenchmarkLeaderFailover(b *testing.B) {
	bin := buildBerth(b)
	c := newProcCluster(b, bin, 3)
	start := time.Now()
	c.waitStable(stableTimeout)
	b.Logf("cluster of 3 stable in %s", time.Since(start).Round(time.Millisecond))

	client := newClient(4)
	var failovers, rejoins []time.Duration
	var failed int
	b.ResetTimer()
	for trial := 0; trial < *failoverTrials; trial++ {
		leader := c.waitStable(stableTimeout)
		var survivors []string
		for i, p := range c.procs {
			if i != leader {
				survivors = append(survivors, p.url())
			}
		}

		c.kill(leader)
		t0 := time.Now()
		d, attempts, kinds, err := registerUntilSuccess(client, survivors, fmt.Sprintf("f-%d", trial), t0)
		if err != nil {
			failed++
			b.Logf("trial %d: killed %s, no successful write: %v (failures: %v)", trial, c.procs[leader].name, err, kinds)
		} else {
			failovers = append(failovers, d)
		}

		c.reap(leader)
		r0 := time.Now()
		c.start(leader)
		newLeader := c.waitStable(stableTimeout)
		rejoins = append(rejoins, time.Since(r0))
		// testing keeps only 10 lines of a benchmark's log unless -v, so
		// the per-trial detail is for -v runs.
		if testing.Verbose() {
			b.Logf("trial %2d: killed leader %s, write ok after %7.1fms (%d attempts); restarted, stable in %s, leader now %s",
				trial, c.procs[leader].name, ms(d), attempts, time.Since(r0).Round(time.Millisecond), c.procs[newLeader].name)
			for _, k := range kinds {
				b.Logf("          failed attempts: %s", k)
			}
		}
	}
	b.StopTimer()

	s := summarize(failovers)
	r := summarize(rejoins)
	b.ReportMetric(ms(s.P50), "failover_p50_ms")
	b.ReportMetric(ms(s.P99), "failover_p99_ms")
	b.ReportMetric(ms(s.Min), "failover_min_ms")
	b.ReportMetric(ms(s.Mean), "failover_mean_ms")
	b.ReportMetric(float64(failed), "failed_trials")
	b.Logf("leader failover (SIGKILL → first successful write, %d trials, %d failed): %s", *failoverTrials, failed, s)
	b.Logf("restart → stable cluster: %s", r)
	if len(failovers) == 0 {
		b.Fatalf("no trial recovered")
	}
}

// registerUntilSuccess sends the same registration to the survivors in
// turn, each attempt bounded by failoverRequestTimeout, until one
// succeeds or failoverBound passes since t0. It returns the time from t0
// to the first success, the number of attempts and a count of each kind
// of failure seen.
func registerUntilSuccess(client *http.Client, targets []string, id string, t0 time.Time) (time.Duration, int, []string, error) {
	deadline := t0.Add(failoverBound)
	var last error
	attempts := 0
	counts := map[string]int{}
	var order []string
	kinds := func() []string {
		var out []string
		for _, k := range order {
			out = append(out, fmt.Sprintf("%dx %s", counts[k], k))
		}
		return out
	}
	for n := 0; time.Now().Before(deadline); n++ {
		attempts++
		a0 := time.Now()
		timeout := min(failoverRequestTimeout, time.Until(deadline))
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := registerJob(ctx, client, targets[n%len(targets)], id)
		cancel()
		if err == nil {
			return time.Since(t0), attempts, kinds(), nil
		}
		last = err
		k := errorKind(err)
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
		if gap := failoverMinGap - time.Since(a0); gap > 0 {
			time.Sleep(gap)
		}
	}
	return time.Since(t0), attempts, kinds(), fmt.Errorf("after %s: %w", failoverBound, last)
}

// errorKind shortens an error to something worth counting: the status
// and message without the job ID and address, or the client-side cause.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "client timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "register ") {
		msg = msg[i+2:]
	}
	if len(msg) > 160 {
		msg = msg[:160]
	}
	return msg
}
