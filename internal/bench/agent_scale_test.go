package bench

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

var (
	agentStartSizes = flag.String("berth.agent-start-sizes", "100,500", "job counts for BenchmarkStart100Allocs")
	agentStartMax   = flag.Duration("berth.agent-start-max", 60*time.Second, "skip a larger size when the smaller one, scaled, would take longer")
	agentRSSTasks   = flag.Int("berth.agent-rss-tasks", 20, "running containers for BenchmarkAgentRSS")
)

// settle lets the agent finish what a change set off (status batches,
// stats collectors starting) before its memory is read.
const settle = 2 * time.Second

// BenchmarkStart100Allocs registers one service job of count N (100, then
// 500) on one agent and measures register → the API showing all N
// running, and register → containerd's last task start. It also reports
// the agent's overhead per task: the agent and plugin processes' RSS
// growth divided by N (containerd's shims are reported apart).
func BenchmarkStart100Allocs(b *testing.B) {
	sizes, err := parseSizes(*agentStartSizes)
	if err != nil {
		b.Fatal(err)
	}
	e := newAgentEnv(b)
	e.registerToRunning(fmt.Sprintf("warmup-%d", jobSeq.Add(1))) // pulls the image
	var prev time.Duration
	prevN := 0
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			if prevN > 0 && prev*time.Duration(n)/time.Duration(prevN) > *agentStartMax {
				b.Skipf("%d allocs took %s: %d would take about %s, over -berth.agent-start-max %s",
					prevN, prev.Round(time.Millisecond), n, (prev * time.Duration(n) / time.Duration(prevN)).Round(time.Second), *agentStartMax)
			}
			prev, prevN = e.startMany(b, n), n
		})
	}
}

// startMany runs one job of count n to all running, reports, stops it
// and returns register → all running in the API.
func (e *agentEnv) startMany(b *testing.B, n int) time.Duration {
	before, err := measureTree(e.agent.Process.Pid)
	if err != nil {
		b.Fatalf("agent RSS: %v", err)
	}
	cpuBefore := treeCPU(e.agent.Process.Pid)
	id := fmt.Sprintf("many-%d-%d", n, jobSeq.Add(1))
	job := e.dockerJob(id, structs.JobTypeService, n, "sleep", "1h")
	timeout := 30*time.Second + time.Duration(n)*200*time.Millisecond
	t0 := time.Now()
	idx := e.register(job)
	allocs, at := e.waitAllocs(id, idx, timeout, func(al []*structs.AllocListStub) bool {
		if f := countStatus(al, structs.AllocClientStatusFailed); f > 0 {
			b.Fatalf("job %s: %d allocs failed: %s", id, f, describeAllocs(al))
		}
		return countStatus(al, structs.AllocClientStatusRunning) == n
	})
	all := at.Sub(t0)
	var lastStart time.Time
	for _, a := range allocs {
		st, ok := e.events.started(a.ID, 10*time.Second)
		if !ok {
			b.Fatalf("alloc %s running but containerd reported no task start: %v", a.ID, errNoSample)
		}
		if st.After(lastStart) {
			lastStart = st
		}
	}
	cpu := treeCPU(e.agent.Process.Pid) - cpuBefore
	time.Sleep(settle)
	after, err := measureTree(e.agent.Process.Pid)
	if err != nil {
		b.Fatalf("agent RSS: %v", err)
	}
	shims, nShims := shimRSS(e.ctd.Namespace)
	perTask := float64(after.Total()-before.Total()) / float64(n)

	b.ReportMetric(all.Seconds(), "all_running_s")
	b.ReportMetric(lastStart.Sub(t0).Seconds(), "ctd_last_start_s")
	b.ReportMetric(float64(n)/all.Seconds(), "allocs/s")
	b.ReportMetric(perTask/(1<<20), "agent_MiB/task")
	if nShims > 0 {
		b.ReportMetric(mib(shims)/float64(nShims), "shim_MiB/task")
	}
	b.Logf("%d allocs: register → all running in API %s, → last containerd task start %s (%.0f allocs/s)",
		n, all.Round(time.Millisecond), lastStart.Sub(t0).Round(time.Millisecond), float64(n)/all.Seconds())
	b.Logf("agent + plugins used %s of CPU to start them (%.1f ms per alloc); load average %s",
		cpu.Round(10*time.Millisecond), ms(cpu)/float64(n), loadAvg())
	b.ReportMetric(ms(cpu)/float64(n), "agent_cpu_ms/alloc")
	b.Logf("agent+plugins RSS %.1f MiB → %.1f MiB (agent %.1f → %.1f, %d plugin procs %.1f → %.1f): %.2f MiB per task (target < 5); %d shims %.1f MiB (%.2f MiB each, containerd's cost)",
		mib(before.Total()), mib(after.Total()), mib(before.Root), mib(after.Root), after.NProcs,
		mib(before.Plugins), mib(after.Plugins), perTask/(1<<20), nShims, mib(shims), mib(shims)/float64(max(nShims, 1)))

	tStop := time.Now()
	if _, _, err := e.api.Jobs().Deregister(id, false, nil); err != nil {
		b.Fatalf("deregister %s: %v", id, err)
	}
	e.waitNoContainers(timeout)
	b.Logf("stopping %d allocs (deregister → no container left): %s", n, time.Since(tStop).Round(time.Millisecond))

	floor := e.containerdFloor(n)
	b.ReportMetric(floor.Seconds(), "ctd_floor_s")
	b.Logf("containerd floor, same run: %d containers started through the containerd client, %d at a time, in %s (%.0f/s); berth takes %.2f× that",
		n, floorParallel, floor.Round(time.Millisecond), float64(n)/floor.Seconds(), all.Seconds()/floor.Seconds())
	return all
}

// BenchmarkAgentRSS measures the `berth agent` process plus its driver
// plugin processes: idle right after registration, with N (20) running
// containers, and idle again once they are stopped.
func BenchmarkAgentRSS(b *testing.B) {
	e := newAgentEnv(b)
	n := max(*agentRSSTasks, 1)
	pid := e.agent.Process.Pid
	time.Sleep(settle)
	idle, err := measureTree(pid)
	if err != nil {
		b.Fatalf("agent RSS: %v", err)
	}

	id := fmt.Sprintf("rss-%d", jobSeq.Add(1))
	idx := e.register(e.dockerJob(id, structs.JobTypeService, n, "sleep", "1h"))
	e.waitAllocs(id, idx, 2*time.Minute, func(al []*structs.AllocListStub) bool {
		if countStatus(al, structs.AllocClientStatusFailed) > 0 {
			b.Fatalf("job %s failed: %s", id, describeAllocs(al))
		}
		return countStatus(al, structs.AllocClientStatusRunning) == n
	})
	time.Sleep(settle)
	busy, err := measureTree(pid)
	if err != nil {
		b.Fatalf("agent RSS: %v", err)
	}
	shims, nShims := shimRSS(e.ctd.Namespace)
	e.stopJob(id)
	time.Sleep(settle)
	after, err := measureTree(pid)
	if err != nil {
		b.Fatalf("agent RSS: %v", err)
	}

	b.ReportMetric(mib(idle.Total()), "idle_MiB")
	b.ReportMetric(mib(busy.Total()), fmt.Sprintf("with%d_MiB", n))
	b.ReportMetric(mib(busy.Root), fmt.Sprintf("with%d_agent_MiB", n))
	b.ReportMetric(mib(busy.Plugins), fmt.Sprintf("with%d_plugins_MiB", n))
	b.ReportMetric(mib(busy.PSS), fmt.Sprintf("with%d_PSS_MiB", n))
	if busy.Resident > 0 {
		b.ReportMetric(mib(busy.Resident), fmt.Sprintf("with%d_resident_MiB", n))
	}
	b.ReportMetric(mib(after.Total()), "after_stop_MiB")
	for _, m := range []struct {
		what string
		t    treeRSS
	}{{"idle after registration", idle}, {fmt.Sprintf("with %d running containers", n), busy}, {"idle after stopping them", after}} {
		b.Logf("%-28s agent %.1f MiB + %d plugin procs %.1f MiB = %.1f MiB summed RSS; resident, each page once: %.1f MiB (target < 60); PSS %.1f MiB%s",
			m.what, mib(m.t.Root), m.t.NProcs, mib(m.t.Plugins), mib(m.t.Total()), mib(m.t.Resident), mib(m.t.PSS), m.t.detail())
	}
	b.Logf("containerd shims for the %d containers (not berth's): %d procs, %.1f MiB", n, nShims, mib(shims))
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q in -berth.agent-start-sizes %q", f, s)
		}
		out = append(out, n)
	}
	return out, nil
}
