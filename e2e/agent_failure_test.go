package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lab"
)

// sleepArg is a unique sleep duration per test: GNU sleep takes a
// fraction, which marks the job's task processes on the command line.
func sleepArg() string { return fmt.Sprintf("3600.%06d", time.Now().UnixNano()%1_000_000) }

// taskProcs counts the processes in a node's namespace running `sleep
// marker` (the job's tasks actually alive there).
func taskProcs(t *testing.T, l *lab.Lab, node, marker string) map[int]string {
	t.Helper()
	procs, err := l.Processes(node)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for pid, cmdline := range procs {
		if strings.HasPrefix(cmdline, "/bin/sleep "+marker) || strings.HasPrefix(cmdline, "sleep "+marker) {
			out[pid] = cmdline
		}
	}
	return out
}

// waitRunning waits until the job has want running allocations, placed as
// check accepts.
func waitRunning(ctx context.Context, l *lab.Lab, job string, timeout time.Duration, check func(by map[string]int) error) (map[string]int, error) {
	var by map[string]int
	err := waitFor(timeout, 200*time.Millisecond, func() error {
		var lastErr error
		for _, addr := range l.ServerHTTPAddrs() {
			names, _, err := nodeNames(ctx, addr)
			if err != nil {
				lastErr = err
				continue
			}
			allocs, err := jobAllocs(ctx, addr, job)
			if err != nil {
				lastErr = err
				continue
			}
			by = runningBy(allocs, names)
			return check(by)
		}
		return lastErr
	})
	return by, err
}

func total(by map[string]int) int {
	n := 0
	for _, c := range by {
		n += c
	}
	return n
}

// TestAgentKilledAllocsMove (scenario 1): a service job of count 6 over 2
// agents; SIGKILL the agent with the most allocations: within the
// heartbeat TTL plus scheduling, 6 allocations run on the other one.
func TestAgentKilledAllocsMove(t *testing.T) {
	l := newLab(t, 3, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr := l.ServerHTTPAddrs()[0]
	marker := sleepArg()
	if err := registerJob(ctx, addr, jobSpec("six", 6, nil, "/bin/sleep", marker)); err != nil {
		t.Fatal(err)
	}
	by, err := waitRunning(ctx, l, "six", 30*time.Second, func(by map[string]int) error {
		if total(by) != 6 {
			return fmt.Errorf("running %v", by)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("job never ran 6 allocations: %v", err)
	}
	victim, survivor := "agent-1", "agent-2"
	if by["agent-2"] > by["agent-1"] {
		victim, survivor = survivor, victim
	}
	t.Logf("placement %v; killing %s", by, victim)
	killed := time.Now()
	if err := l.Kill(victim); err != nil {
		t.Fatal(err)
	}
	// TTL up to 2×min_heartbeat_ttl plus the grace, then scheduling.
	bound := 2*testTuning.MinHeartbeatTTL + testTuning.HeartbeatGrace + 15*time.Second
	if _, err := waitRunning(ctx, l, "six", bound, func(by map[string]int) error {
		if by[survivor] != 6 {
			return fmt.Errorf("running %v", by)
		}
		return nil
	}); err != nil {
		t.Fatalf("allocations did not move to %s: %v", survivor, err)
	}
	t.Logf("6 allocations running on %s %s after killing %s (bound %s)", survivor, time.Since(killed).Round(10*time.Millisecond), victim, bound)
	if got := len(taskProcs(t, l, survivor, marker)); got != 6 {
		t.Errorf("%s runs %d task processes, want 6", survivor, got)
	}
}

// TestAgentPartition (scenario 4): an agent cut off from the servers for
// less than its TTL loses nothing; cut off for longer, its allocations
// are replaced on the other agent, and once it is back its stale
// allocations are stopped: no duplicates run.
func TestAgentPartition(t *testing.T) {
	l := newLab(t, 3, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr := l.ServerHTTPAddrs()[0]
	marker := sleepArg()
	const count = 4
	if err := registerJob(ctx, addr, jobSpec("part", count, nil, "/bin/sleep", marker)); err != nil {
		t.Fatal(err)
	}
	// Wait for a placement with work on both agents; the busier one is
	// partitioned.
	by, err := waitRunning(ctx, l, "part", 30*time.Second, func(by map[string]int) error {
		if total(by) != count {
			return fmt.Errorf("running %v", by)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	victim, other := "agent-1", "agent-2"
	if by["agent-2"] > by["agent-1"] {
		victim, other = other, victim
	}
	before := allocIDs(ctx, t, addr, "part")

	// Short: well under min_heartbeat_ttl.
	short := testTuning.MinHeartbeatTTL / 2
	if err := l.Partition(victim); err != nil {
		t.Fatal(err)
	}
	time.Sleep(short)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	// Give a wrongful reschedule time to show (TTL + grace).
	time.Sleep(2*testTuning.MinHeartbeatTTL + testTuning.HeartbeatGrace)
	after := allocIDs(ctx, t, addr, "part")
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("a %s partition rescheduled: allocations %v became %v", short, before, after)
	}
	_, status, err := nodeNames(ctx, addr)
	if err != nil || status[victim] != "ready" {
		t.Fatalf("%s is %q after a short partition (%v)", victim, status[victim], err)
	}

	// Long: until the servers mark it down and replace its allocations.
	if err := l.Partition(victim); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	if _, err := waitRunning(ctx, l, "part", 2*testTuning.MinHeartbeatTTL+testTuning.HeartbeatGrace+20*time.Second, func(by map[string]int) error {
		if by[other] != count {
			return fmt.Errorf("running %v", by)
		}
		return nil
	}); err != nil {
		t.Fatalf("allocations were not replaced on %s: %v", other, err)
	}
	t.Logf("%d allocations replaced on %s %s after partitioning %s", count, other, time.Since(cut).Round(10*time.Millisecond), victim)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	// Back: its stale tasks stop; only the replacements run.
	if err := waitFor(45*time.Second, 250*time.Millisecond, func() error {
		if n := len(taskProcs(t, l, victim, marker)); n != 0 {
			return fmt.Errorf("%s still runs %d stale task processes", victim, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := len(taskProcs(t, l, other, marker)); got != count {
		t.Errorf("%s runs %d task processes, want %d", other, got, count)
	}
	by, err = waitRunning(ctx, l, "part", 20*time.Second, func(by map[string]int) error {
		if total(by) != count || by[other] != count {
			return fmt.Errorf("running %v", by)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func allocIDs(ctx context.Context, t *testing.T, addr, job string) []string {
	t.Helper()
	allocs, err := jobAllocs(ctx, addr, job)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range allocs {
		if a.DesiredStatus == "run" {
			ids = append(ids, a.ID)
		}
	}
	slicesSort(ids)
	return ids
}
