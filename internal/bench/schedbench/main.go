// Command schedbench is berth's end-to-end scheduler benchmark: it starts
// one berth server in this process (real Raft and BoltDB in a temporary
// data dir, on loopback with random ports), registers a fleet of simulated
// nodes through the real client endpoints (internal/simnodes), waits until
// the servers see them all ready, registers the benchmark jobs, and
// measures the time from the first registration until every allocation is
// committed, observed through blocking queries on the job list (which
// carries each job's summary). Its last line is
//
//	placements_per_second=N nodes=5000 allocs=10000
//
// Run it with `make bench-scheduler`, or
//
//	go run ./internal/bench/schedbench -nodes 10000 -jobs 10 -count 10000 -rss
//
// The numbers depend on the machine and on what else runs on it; they are
// recorded in the README, never asserted.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/simnodes"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

type options struct {
	nodes, jobs, count int
	spread, rss        bool
	cpuProfile         string
	memProfile         string
	profileAll         bool
	address            string
	timeout            time.Duration
	readyTimeout       time.Duration
	waitRunning        time.Duration
	watchers           int
	schedulers         int
	verbose            bool
	keepDataDir        bool
}

func main() {
	var o options
	flag.IntVar(&o.nodes, "nodes", 5000, "simulated nodes")
	flag.IntVar(&o.jobs, "jobs", 1, "service jobs to register")
	flag.IntVar(&o.count, "count", 10000, "allocations per job (the task group's count)")
	flag.BoolVar(&o.spread, "spread", false, "give the jobs a spread block on ${node.datacenter}")
	flag.BoolVar(&o.rss, "rss", false, "print the process's RSS (server and simulator) at the end")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured window to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile (after the placements) to this file")
	flag.BoolVar(&o.profileAll, "profile-all", false, "with -cpuprofile, profile node registration too")
	flag.StringVar(&o.address, "address", "", "benchmark an already running server at this HTTP address instead of starting one (-rss then measures only this process)")
	flag.DurationVar(&o.timeout, "timeout", 150*time.Second, "give up when the placements take longer")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", 120*time.Second, "give up when the nodes are not all ready by then")
	flag.DurationVar(&o.waitRunning, "wait-running", 10*time.Second, "after the placements, wait this long for the simulator to report them all running (not part of the figure)")
	flag.IntVar(&o.watchers, "watchers", 0, "concurrent allocation long-polls of the simulator (0: its default)")
	flag.IntVar(&o.schedulers, "schedulers", 0, "scheduler workers of the in-process server (0: its default)")
	flag.BoolVar(&o.verbose, "v", false, "log the server's warnings to stderr")
	flag.BoolVar(&o.keepDataDir, "keep-data-dir", false, "keep the server's data dir")
	flag.Parse()
	if o.nodes <= 0 || o.jobs <= 0 || o.count <= 0 {
		fmt.Fprintln(os.Stderr, "schedbench: -nodes, -jobs and -count must be positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var res result
	if err := run(ctx, o, &res); err != nil {
		fmt.Fprintf(os.Stderr, "schedbench: %v\n", err)
		os.Exit(1)
	}
	// Printed once the server and the simulator are down, so that it is
	// the last line whatever they log while stopping.
	if res.memory != "" {
		fmt.Println(res.memory)
	}
	fmt.Printf("placements_per_second=%.0f nodes=%d allocs=%d\n", res.pps, o.nodes, o.jobs*o.count)
}

// result is what run measured.
type result struct {
	pps    float64
	memory string
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
}

func run(ctx context.Context, o options, res *result) error {
	total := o.jobs * o.count
	var stopProfile func()
	if o.cpuProfile != "" && o.profileAll {
		var err error
		if stopProfile, err = startProfile(o.cpuProfile); err != nil {
			return err
		}
		defer func() { stopProfile() }()
	}

	addr := o.address
	if addr == "" {
		srv, dir, err := startServer(o)
		if err != nil {
			return err
		}
		defer func() {
			start := time.Now()
			srv.Kill()
			if !o.keepDataDir {
				os.RemoveAll(dir)
			}
			logf("server stopped in %s", time.Since(start).Round(time.Millisecond))
		}()
		addr = "http://" + srv.HTTPAddr()
		logf("server leads at %s (data dir %s)", addr, dir)
	}
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		return err
	}

	// The fleet.
	sim, err := simnodes.New(simnodes.Config{Address: addr, Nodes: o.nodes, Seed: uint64(time.Now().UnixNano()), Watchers: o.watchers})
	if err != nil {
		return err
	}
	simCtx, simCancel := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	defer func() {
		simCancel()
		if err := <-simDone; err != nil {
			logf("simulator: %v", err)
		}
	}()
	start := time.Now()
	logf("registering %d simulated nodes", o.nodes)
	if err := waitReady(ctx, client, sim, simDone, o); err != nil {
		return err
	}
	logf("%d nodes ready in %s (%+v)", o.nodes, time.Since(start).Round(time.Millisecond), sim.Stats())

	if o.cpuProfile != "" && !o.profileAll {
		if stopProfile, err = startProfile(o.cpuProfile); err != nil {
			return err
		}
	}

	// The measurement.
	jobs := make([]*structs.Job, o.jobs)
	for i := range jobs {
		jobs[i] = benchJob(i, o)
	}
	logf("registering %d job(s) of count %d", o.jobs, o.count)
	mctx, mcancel := context.WithTimeout(ctx, o.timeout)
	defer mcancel()
	t0 := time.Now()
	if err := registerJobs(mctx, client, jobs); err != nil {
		return err
	}
	registered := time.Since(t0)
	placed, err := waitPlaced(mctx, client, jobs, total)
	elapsed := time.Since(t0)
	if stopProfile != nil && !o.profileAll {
		stopProfile()
		stopProfile = nil
		logf("CPU profile written to %s", o.cpuProfile)
	}
	if err != nil {
		explainStuck(client, jobs)
		return fmt.Errorf("%d of %d allocations committed after %s: %w", placed, total, elapsed.Round(time.Millisecond), err)
	}
	logf("all %d allocations committed %s after the first registration (registration took %s)",
		total, elapsed.Round(time.Millisecond), registered.Round(time.Millisecond))

	if o.waitRunning > 0 {
		deadline := time.Now().Add(o.waitRunning)
		for sim.Stats().AllocsRunning < int64(total) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		st := sim.Stats()
		logf("simulator reported %d of %d allocations running %s after the first registration (%+v)",
			st.AllocsRunning, total, time.Since(t0).Round(time.Millisecond), st)
	}
	if o.rss {
		res.memory = memoryLine(o.address != "")
	}
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return err
		}
		logf("heap profile written to %s", o.memProfile)
	}
	res.pps = float64(total) / elapsed.Seconds()
	return nil
}

func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}

// startServer starts a one-server cluster in this process and waits until
// it leads.
func startServer(o options) (*server.Server, string, error) {
	dir, err := os.MkdirTemp("", "berth-schedbench-")
	if err != nil {
		return nil, "", err
	}
	cfg := server.DefaultConfig()
	cfg.NodeName = "bench-server"
	cfg.DataDir = dir
	cfg.BindAddr = "127.0.0.1"
	cfg.HTTPPort, cfg.RaftPort, cfg.GossipPort = 0, 0, 0
	cfg.BootstrapExpect = 1
	cfg.GossipLocal = true
	cfg.RaftHeartbeatTimeout = 400 * time.Millisecond
	cfg.RaftElectionTimeout = 400 * time.Millisecond
	cfg.RaftLeaderLeaseTimeout = 200 * time.Millisecond
	if o.schedulers > 0 {
		cfg.NumSchedulers = o.schedulers
	}
	level := slog.LevelError
	if o.verbose {
		level = slog.LevelWarn
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start server: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !srv.IsLeader() {
		if time.Now().After(deadline) {
			srv.Kill()
			os.RemoveAll(dir)
			return nil, "", errors.New("the server did not become leader within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return srv, dir, nil
}

// waitReady waits until the simulator has every node registered and the
// server lists them all as ready.
func waitReady(ctx context.Context, c *api.Client, sim *simnodes.Simulator, simDone <-chan error, o options) error {
	ctx, cancel := context.WithTimeout(ctx, o.readyTimeout)
	defer cancel()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-sim.Ready():
			waiting = false
		case err := <-simDone:
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("simulator stopped: %w", err)
		case <-tick.C:
			logf("  %+v", sim.Stats())
		case <-ctx.Done():
			return fmt.Errorf("nodes not ready after %s: %+v", o.readyTimeout, sim.Stats())
		}
	}
	var index uint64
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
		nodes, qm, err := c.Nodes().List(q)
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		ready := 0
		for _, n := range nodes {
			if n.Status == structs.NodeStatusReady && n.SchedulingEligibility != structs.NodeSchedulingIneligible {
				ready++
			}
		}
		if ready >= o.nodes {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the server lists %d of %d nodes ready", ready, o.nodes)
		}
		index = qm.LastIndex
	}
}

func benchJob(i int, o options) *structs.Job {
	id := fmt.Sprintf("bench-%04d", i)
	job := &structs.Job{
		ID:          id,
		Name:        id,
		Type:        "service",
		Namespace:   structs.DefaultNamespace,
		Priority:    50,
		Datacenters: []string{"dc1", "dc2", "dc3"},
		TaskGroups: []*structs.TaskGroup{{
			Name:          "app",
			Count:         o.count,
			EphemeralDisk: &structs.EphemeralDisk{SizeMB: 150},
			Tasks: []*structs.Task{{
				Name:      "app",
				Driver:    "docker",
				Config:    map[string]any{"image": "registry.example/app:1"},
				Resources: &structs.Resources{CPU: 20, MemoryMB: 32},
			}},
		}},
	}
	if o.spread {
		job.Spreads = []*structs.Spread{{Attribute: "${node.datacenter}", Weight: 100}}
	}
	return job
}

// registerJobs registers the jobs, 16 at a time.
func registerJobs(ctx context.Context, c *api.Client, jobs []*structs.Job) error {
	work := make(chan *structs.Job)
	var (
		wg       sync.WaitGroup
		firstErr atomic.Pointer[error]
	)
	for range min(16, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				w := (&api.WriteOptions{Namespace: j.Namespace}).WithContext(ctx)
				if _, _, err := c.Jobs().Register(j, w); err != nil {
					err = fmt.Errorf("register job %s: %w", j.ID, err)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	for _, j := range jobs {
		if firstErr.Load() != nil {
			break
		}
		select {
		case work <- j:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

// waitPlaced follows the job list (each stub carries its job's summary)
// with blocking queries until the jobs have total allocations. It pauses
// minGap between queries so that the observer costs the server little: a
// job list computes the summary of every job from its allocations, so the
// pause grows with the number of jobs (20ms for one, 220ms for 1,000).
func waitPlaced(ctx context.Context, c *api.Client, jobs []*structs.Job, total int) (int, error) {
	minGap := 20*time.Millisecond + time.Duration(len(jobs))*200*time.Microsecond
	want := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		want[j.ID] = true
	}
	var index uint64
	placed := 0
	lastLog := time.Now()
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 2 * time.Second, Prefix: "bench-"}).WithContext(ctx)
		stubs, qm, err := c.Jobs().List(q)
		if err != nil {
			if ctx.Err() != nil {
				return placed, ctx.Err()
			}
			return placed, fmt.Errorf("list jobs: %w", err)
		}
		placed = 0
		for _, s := range stubs {
			if !want[s.ID] || s.JobSummary == nil {
				continue
			}
			for _, tg := range s.JobSummary.Summary {
				placed += tg.Starting + tg.Running + tg.Complete + tg.Failed + tg.Lost + tg.Unknown
			}
		}
		if placed >= total {
			return placed, nil
		}
		if time.Since(lastLog) > 5*time.Second {
			logf("  %d of %d allocations committed", placed, total)
			lastLog = time.Now()
		}
		index = qm.LastIndex
		select {
		case <-ctx.Done():
			return placed, ctx.Err()
		case <-time.After(minGap):
		}
	}
}

// explainStuck prints what the latest evaluation of the first jobs says,
// when the placements did not finish.
func explainStuck(c *api.Client, jobs []*structs.Job) {
	for _, j := range jobs[:min(3, len(jobs))] {
		evals, _, err := c.Jobs().Evaluations(j.ID, nil)
		if err != nil {
			logf("job %s: evaluations: %v", j.ID, err)
			continue
		}
		for _, e := range evals {
			logf("job %s: eval %s status=%s %s failed_groups=%d queued=%v", j.ID, e.ID, e.Status, e.StatusDescription, len(e.FailedTGAllocs), e.QueuedAllocations)
			for tg, m := range e.FailedTGAllocs {
				logf("  group %s: evaluated=%d filtered=%d exhausted=%d constraints=%v dimensions=%v",
					tg, m.NodesEvaluated, m.NodesFiltered, m.NodesExhausted, m.ConstraintFiltered, m.DimensionExhausted)
			}
		}
	}
}

// memoryLine reports VmRSS and VmHWM of this process and the Go heap.
func memoryLine(external bool) string {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")
	who := "server and simulator, one process"
	if external {
		who = "simulator only; the server runs elsewhere"
	}
	return fmt.Sprintf("rss=%s peak_rss=%s go_heap_inuse_mb=%d (%s)", rss, hwm, ms.HeapInuse>>20, who)
}

func procStatus(key string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strings.ReplaceAll(strings.TrimSpace(v), " ", "")
		}
	}
	return "unknown"
}
