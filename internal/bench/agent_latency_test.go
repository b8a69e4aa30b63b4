package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"

	"github.com/berth-dev/berth/structs"
)

var (
	agentRunN   = flag.Int("berth.agent-run-n", 30, "iterations of the register→running and ctr run measurements")
	agentBatchN = flag.Int("berth.agent-batch-n", 20, "batch jobs for the exit→complete measurement")
)

// BenchmarkRegisterToRunning measures job register → allocation running
// for one docker task with a local image, against a bare `ctr run` of the
// same image on the same containerd in the same run. Each berth sample is
// the time from the register call to the blocking query on the job's
// allocations answering with ClientStatus running (api_*), and to
// containerd's own task-start event (ctd_*); each ctr sample is `ctr run
// -d` from exec to exit (it exits once the task started) and to the same
// event. Every job is stopped, and its container gone, before the next.
func BenchmarkRegisterToRunning(b *testing.B) {
	e := newAgentEnv(b)
	n := max(*agentRunN, 1)

	ctrBin, err := exec.LookPath("ctr")
	if err != nil { // newAgentEnv already failed for this when CI=true
		b.Skipf("ctr (installed with containerd) is needed to compare with: %v", err)
	}
	// warm-ups: the agent pulls and unpacks the image into the namespace
	// (ctr then runs that same image), and both paths get their caches warm
	e.registerToRunning(fmt.Sprintf("warmup-%d", jobSeq.Add(1)))
	e.ctrRun(ctrBin, fmt.Sprintf("ctr-warmup-%d", jobSeq.Add(1)))

	// interleaved, so both see the same machine load
	b.Logf("load average before: %s", loadAvg())
	var api, ctd, lag, ctrExit, ctrStart []time.Duration
	for i := 0; i < n; i++ {
		apiD, ctdD := e.registerToRunning(fmt.Sprintf("run-%d", jobSeq.Add(1)))
		api, ctd = append(api, apiD), append(ctd, ctdD)
		lag = append(lag, apiD-ctdD)
		exitD, startD := e.ctrRun(ctrBin, fmt.Sprintf("ctr-%d", jobSeq.Add(1)))
		ctrExit, ctrStart = append(ctrExit, exitD), append(ctrStart, startD)
	}
	b.Logf("load average after: %s", loadAvg())

	sa, sc, sl := summarize(api), summarize(ctd), summarize(lag)
	se, ss := summarize(ctrExit), summarize(ctrStart)
	b.ReportMetric(ms(sa.P50), "api_p50_ms")
	b.ReportMetric(ms(sa.P99), "api_p99_ms")
	b.ReportMetric(ms(sc.P50), "ctd_p50_ms")
	b.ReportMetric(ms(sc.P99), "ctd_p99_ms")
	b.ReportMetric(ms(se.P50), "ctr_p50_ms")
	b.ReportMetric(ms(se.P99), "ctr_p99_ms")
	b.ReportMetric(ms(sa.P50)/ms(se.P50), "ratio_p50")
	b.ReportMetric(ms(sa.P99)/ms(se.P99), "ratio_p99")
	b.Logf("berth register → API shows running:       %s", sa)
	b.Logf("berth register → containerd task start:   %s", sc)
	b.Logf("berth containerd start → API shows it:    %s", sl)
	b.Logf("ctr run -d → ctr exits (task running):    %s", se)
	b.Logf("ctr run -d → containerd task start:       %s", ss)
	b.Logf("ratio berth(API)/ctr: p50 %.2f×, p99 %.2f× (target < 1.5×); berth(containerd)/ctr p50 %.2f×",
		ms(sa.P50)/ms(se.P50), ms(sa.P99)/ms(se.P99), ms(sc.P50)/ms(se.P50))
}

// registerToRunning registers a one-task service job, waits for the API
// to show it running, stops it, and returns register → API running and
// register → containerd's task start.
func (e *agentEnv) registerToRunning(id string) (apiD, ctdD time.Duration) {
	e.tb.Helper()
	job := e.dockerJob(id, structs.JobTypeService, 1, "sleep", "1h")
	t0 := time.Now()
	idx := e.register(job)
	allocs, at := e.waitAllocs(id, idx, 60*time.Second, func(al []*structs.AllocListStub) bool {
		if countStatus(al, structs.AllocClientStatusFailed) > 0 {
			e.tb.Fatalf("job %s failed: %s", id, describeAllocs(al))
		}
		return countStatus(al, structs.AllocClientStatusRunning) == 1
	})
	startAt, ok := e.events.started(allocs[0].ID, 10*time.Second)
	if !ok {
		e.tb.Fatalf("job %s: alloc %s running but containerd reported no task start: %v", id, allocs[0].ID, errNoSample)
	}
	e.stopJob(id)
	return at.Sub(t0), startAt.Sub(t0)
}

// ctrRun runs `ctr run -d` of the test image (already in the namespace,
// pulled by the agent) and returns exec → ctr exiting (it exits once the
// task started) and exec → containerd's task start; then it removes the
// container.
func (e *agentEnv) ctrRun(ctrBin, id string) (exitD, startD time.Duration) {
	e.tb.Helper()
	cmd := exec.Command(ctrBin, "-a", e.ctd.Address, "-n", e.ctd.Namespace,
		"run", "-d", "--null-io", e.image, id, "/testapp", "sleep", "1h")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	exitD = time.Since(t0)
	if err != nil {
		e.tb.Fatalf("ctr run %s: %v\n%s", id, err, out.String())
	}
	startAt, ok := e.events.started(id, 10*time.Second)
	if !ok {
		e.tb.Fatalf("ctr run %s: containerd reported no task start: %v", id, errNoSample)
	}
	e.removeContainer(id)
	return exitD, startAt.Sub(t0)
}

// loadAvg is /proc/loadavg's first three fields: the benchmarks share
// the machine with whatever else runs, and say so.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// removeContainer kills and deletes one container and its snapshot.
func (e *agentEnv) removeContainer(id string) {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(e.ctd.Context(context.Background()), 30*time.Second)
	defer cancel()
	c, err := e.ctd.Client().LoadContainer(ctx, id)
	if err != nil {
		e.tb.Fatalf("load container %s: %v", id, err)
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if ch, err := task.Wait(ctx); err == nil {
			_ = task.Kill(ctx, syscall.SIGKILL)
			<-ch
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
			e.tb.Fatalf("delete task %s: %v", id, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		e.tb.Fatalf("delete container %s: %v", id, err)
	}
}

// BenchmarkBatchComplete measures a batch task's exit (containerd's
// ExitedAt, and the agent's FinishedAt) → the blocking query on the job's
// allocations answering with ClientStatus complete. The task exits at
// once (`print x y`).
func BenchmarkBatchComplete(b *testing.B) {
	e := newAgentEnv(b)
	n := max(*agentBatchN, 1)
	e.batchOnce(fmt.Sprintf("batch-warmup-%d", jobSeq.Add(1)))
	b.Logf("load average before: %s", loadAvg())
	var fromExit, fromFinished, total, exitToPub, pubToFinished []time.Duration
	for i := 0; i < n; i++ {
		s := e.batchOnce(fmt.Sprintf("batch-%d", jobSeq.Add(1)))
		fromExit, fromFinished, total = append(fromExit, s.visible.Sub(s.exited)), append(fromFinished, s.visible.Sub(s.finished)), append(total, s.visible.Sub(s.registered))
		exitToPub, pubToFinished = append(exitToPub, s.published.Sub(s.exited)), append(pubToFinished, s.finished.Sub(s.published))
	}
	b.Logf("load average after: %s", loadAvg())
	se, sf, st := summarize(fromExit), summarize(fromFinished), summarize(total)
	b.ReportMetric(ms(se.P50), "exit_to_complete_p50_ms")
	b.ReportMetric(ms(se.P99), "exit_to_complete_p99_ms")
	b.ReportMetric(ms(sf.P50), "finished_to_complete_p50_ms")
	b.ReportMetric(ms(st.P50), "register_to_complete_p50_ms")
	b.Logf("task exit (containerd ExitedAt) → API shows complete: %s (target < 150ms)", se)
	b.Logf("agent FinishedAt → API shows complete:              %s", sf)
	b.Logf("register → API shows complete:                      %s", st)
	b.Logf("breakdown: shim ExitedAt → containerd publishes the exit: %s", summarize(exitToPub))
	b.Logf("breakdown: containerd publishes → agent FinishedAt:       %s", summarize(pubToFinished))
}

// batchSample is one batch job's timeline.
type batchSample struct {
	registered time.Time // register call
	exited     time.Time // the shim's ExitedAt
	published  time.Time // containerd's exit event
	finished   time.Time // the agent's TaskState FinishedAt
	visible    time.Time // the blocking query answered with complete
}

// batchOnce runs one batch job to completion and returns its timeline.
func (e *agentEnv) batchOnce(id string) batchSample {
	e.tb.Helper()
	job := e.dockerJob(id, structs.JobTypeBatch, 1, "print", "x", "y")
	var s batchSample
	s.registered = time.Now()
	idx := e.register(job)
	allocs, at := e.waitAllocs(id, idx, 60*time.Second, func(al []*structs.AllocListStub) bool {
		if countStatus(al, structs.AllocClientStatusFailed) > 0 {
			e.tb.Fatalf("job %s failed: %s", id, describeAllocs(al))
		}
		return countStatus(al, structs.AllocClientStatusComplete) == 1
	})
	s.visible = at
	var ok bool
	if s.exited, ok = e.events.exited(allocs[0].ID, 10*time.Second); !ok {
		e.tb.Fatalf("job %s: alloc %s complete but containerd reported no exit: %v", id, allocs[0].ID, errNoSample)
	}
	s.published, _ = e.events.exitPublished(allocs[0].ID, time.Second)
	st := allocs[0].TaskStates["t"]
	if st == nil || st.FinishedAt.IsZero() {
		e.tb.Fatalf("job %s: alloc complete without a FinishedAt: %+v", id, st)
	}
	s.finished = st.FinishedAt
	e.stopJob(id)
	return s
}
