package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
)

// jobSeq keeps job IDs distinct across sub-benchmarks and reruns.
var jobSeq atomic.Int64

// BenchmarkJobRegister measures PUT /v1/jobs on an in-process
// three-server cluster (internal/servertest) running the production Raft
// timings: one client against the leader, one against a follower (the
// follower forwards to the leader), and many concurrent clients against
// the leader. Every job ID is new, so each write is an insert.
func BenchmarkJobRegister(b *testing.B) {
	defaults := server.DefaultConfig()
	c := servertest.NewCluster(b, 3, servertest.WithConfig(func(i int, cfg *server.Config) {
		cfg.RaftHeartbeatTimeout = defaults.RaftHeartbeatTimeout
		cfg.RaftElectionTimeout = defaults.RaftElectionTimeout
		cfg.RaftLeaderLeaseTimeout = defaults.RaftLeaderLeaseTimeout
		cfg.ReconcileInterval = defaults.ReconcileInterval
	}))
	li, leader := c.WaitForLeader(30 * time.Second)
	var follower *server.Server
	for i, s := range c.Servers() {
		if i != li && s != nil {
			follower = s
			break
		}
	}
	client := newClient(max(*registerConc, 32))
	b.Cleanup(client.CloseIdleConnections)
	leaderURL, followerURL := "http://"+leader.HTTPAddr(), "http://"+follower.HTTPAddr()

	run := func(name, url string, clients, total int) {
		b.Run(name, func(b *testing.B) {
			res := registerLoad(client, url, clients, total, *registerMax)
			if _, now := c.Leader(); now != leader {
				b.Logf("leadership moved during the run; figures include forwarding")
			}
			res.report(b)
			if res.ok == 0 {
				b.Fatalf("no registration succeeded: %v", res.firstErr)
			}
		})
	}
	run("sequential", leaderURL, 1, *registerN)
	run("forwarded", followerURL, 1, *registerN)
	run(fmt.Sprintf("concurrent-%d", *registerConc), leaderURL, *registerConc, *registerConcN)
}

type loadResult struct {
	clients   int
	ok, errs  int
	elapsed   time.Duration
	latencies []time.Duration
	firstErr  error
}

// registerLoad sends total registrations of new jobs to url from clients
// goroutines, each one request at a time, stopping early after maxDur.
func registerLoad(client *http.Client, url string, clients, total int, maxDur time.Duration) loadResult {
	var (
		issued atomic.Int64
		mu     sync.Mutex
		res    = loadResult{clients: clients, latencies: make([]time.Duration, 0, total)}
		wg     sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(maxDur)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for issued.Add(1) <= int64(total) && time.Now().Before(deadline) {
				id := fmt.Sprintf("bench-%d", jobSeq.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t0 := time.Now()
				err := registerJob(ctx, client, url, id)
				d := time.Since(t0)
				cancel()
				mu.Lock()
				if err == nil {
					res.ok++
					res.latencies = append(res.latencies, d)
				} else {
					res.errs++
					if res.firstErr == nil {
						res.firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r loadResult) report(b *testing.B) {
	s := summarize(r.latencies)
	rate := float64(r.ok) / r.elapsed.Seconds()
	b.ReportMetric(rate, "writes/s")
	b.ReportMetric(ms(s.P50), "p50_ms")
	b.ReportMetric(ms(s.P99), "p99_ms")
	b.ReportMetric(float64(r.errs), "errors")
	b.Logf("%d clients: %d ok, %d errors in %s = %.0f writes/s; latency %s", r.clients, r.ok, r.errs, r.elapsed.Round(time.Millisecond), rate, s)
	if r.firstErr != nil {
		b.Logf("first error: %v", r.firstErr)
	}
}
