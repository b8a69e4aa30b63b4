package bench

// BenchmarkContainerdFloorStudy asks where containerd's time goes when one
// node starts hundreds of containers, and what a client can change about
// it: the parallelism of starts, and how many containers share one
// containerd-shim-runc-v2 (the runc shim puts every container whose OCI
// spec carries the same "io.containerd.runc.v2.group" annotation — or,
// failing that, "io.kubernetes.cri.sandbox-id" — into one shim process).
// It needs no berth: a private containerd, the test image, the containerd
// Go client. Run it alone, on a quiet machine:
//
//	go test -run '^$' -bench ContainerdFloorStudy -benchtime 1x -timeout 30m ./internal/bench/

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/remotes/docker"

	"github.com/berth-dev/berth/internal/containerdtest"
)

var (
	studyNFlag        = flag.Int("berth.ctdstudy-n", 500, "containers each variant of BenchmarkContainerdFloorStudy starts")
	studyVariantsFlag = flag.String("berth.ctdstudy-variants", "p16,p4,p8,p32,p16g10,p16g50",
		"variants of BenchmarkContainerdFloorStudy: pN = N parallel starts, gM = M containers per shim (the first alone), gMr = the same all at once")
)

// shimGroupAnnotation is the runc shim's own grouping key (checked before
// the CRI sandbox id; see runtime/v2/runc/manager/manager_linux.go).
const shimGroupAnnotation = "io.containerd.runc.v2.group"

// studyVariant is one way of starting the n containers.
type studyVariant struct {
	name      string
	parallel  int
	groupSize int // containers per shim; 1 = one shim each (containerd's default)
	// racy starts a group's containers all at once; otherwise the group's
	// first container starts alone, the rest after it. (With containerd
	// 1.6.20's shim, concurrent `shim start`s of one new group sometimes
	// spawn two shims, and the loser outlives its container.)
	racy bool
}

func parseStudyVariants(tb testing.TB, s string) []studyVariant {
	tb.Helper()
	var out []studyVariant
	for _, name := range strings.Split(s, ",") {
		v := studyVariant{name: name, groupSize: 1}
		rest, ok := strings.CutPrefix(name, "p")
		if !ok {
			tb.Fatalf("variant %q: want pN, pNgM or pNgMr", name)
		}
		par, group, hasGroup := strings.Cut(rest, "g")
		var err error
		if v.parallel, err = strconv.Atoi(par); err != nil || v.parallel < 1 || v.parallel > 128 {
			tb.Fatalf("variant %q: bad parallelism", name)
		}
		if hasGroup {
			group, v.racy = strings.CutSuffix(group, "r")
			if v.groupSize, err = strconv.Atoi(group); err != nil || v.groupSize < 1 {
				tb.Fatalf("variant %q: bad group size", name)
			}
		}
		out = append(out, v)
	}
	return out
}

// phaseTimes is how long one container's three client calls took.
type phaseTimes struct{ create, newTask, start time.Duration }

// hostProbe is what the node looks like at one moment: the costs a
// per-container operation pays that may grow with the container count.
type hostProbe struct {
	mountLines   int           // lines of containerd's /proc/PID/mountinfo
	mountRead    time.Duration // median time to read and split it
	cgroupMkdir  time.Duration // median mkdir+rmdir of a v1 memory cgroup
	execShim     time.Duration // median fork+exec of `containerd-shim-runc-v2 -v`
	shims        int
	shimRSS      int64
	containerRSS int64 // containerd's
}

// studyResult is one variant's measurements.
type studyResult struct {
	v              studyVariant
	total, at100   time.Duration
	curve          []time.Duration // elapsed at every 50th completion
	first, last    phaseTimes      // medians over the first and last 50 submitted
	before, after  hostProbe
	ctdCPU, sysCPU time.Duration // containerd's and the whole machine's CPU during the starts
	shimCPU        time.Duration // CPU the live shims used since they started
	sysKernel      time.Duration // the part of sysCPU spent in the kernel
	// CPU of processes that have exited, charged to their parent when it
	// reaped them: containerd's children are the per-task `shim start`
	// runs; a shim's are `runc create` and `runc start`.
	ctdChildCPU, shimChildCPU time.Duration
	ctrCPU                    time.Duration // the containers' own processes: runc init, then testapp
	selfCPU                   time.Duration // this benchmark process: the containerd client
	idleShimCPU               time.Duration // shims' + containerd's CPU in 5 s with all running and nothing to do
	loadAvg                   string
	remove                    time.Duration
	orphans                   int // shims left running after all containers were deleted
}

func BenchmarkContainerdFloorStudy(b *testing.B) {
	containerdtest.Require(b)
	variants := parseStudyVariants(b, *studyVariantsFlag)
	n := *studyNFlag
	if n < 1 || n > 1000 {
		b.Fatalf("-berth.ctdstudy-n %d: want 1..1000", n)
	}
	h := containerdtest.Start(b)
	// Runs before the harness's own (sequential, 30 s) cleanup: hundreds
	// of containers need parallel removal.
	b.Cleanup(func() { studyRemoveAll(b, h, 16, 3*time.Minute) })
	reg := containerdtest.Registry(b)
	ref := containerdtest.BuildTestImage(b, reg, "bench/study", "v1")
	ctx := h.Context(context.Background())
	client := h.Client()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	img, err := client.Pull(pctx, ref, containerd.WithPullUnpack, containerd.WithResolver(docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts)),
	})))
	cancel()
	if err != nil {
		b.Fatalf("pull %s: %v", ref, err)
	}
	ctdPid, err := findContainerdPid(h)
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		var results []studyResult
		for _, v := range variants {
			r := runStudyVariant(b, h, client, img, ctdPid, v, n, iter)
			results = append(results, r)
			b.ReportMetric(r.total.Seconds(), v.name+"_s")
		}
		logStudy(b, results, n)
	}
}

// runStudyVariant starts n containers as v says, probes the node with
// all of them running, and removes them again.
func runStudyVariant(b *testing.B, h *containerdtest.Harness, client *containerd.Client, img containerd.Image, ctdPid int, v studyVariant, n, iter int) studyResult {
	b.Helper()
	r := studyResult{v: v}
	ctx, cancel := context.WithTimeout(h.Context(context.Background()), 10*time.Minute)
	defer cancel()
	r.before = probeHost(b, h, ctdPid)
	ctd0, _ := procCPU(ctdPid)
	ctdChild0, _ := childCPU(ctdPid)
	self0, _ := procCPU(os.Getpid())
	sys0, kern0 := systemBusy()

	phases := make([]phaseTimes, n)
	done := make([]time.Duration, 0, n)
	var mu sync.Mutex
	var firstErr error
	ids := make(chan int)
	leaders := make([]chan struct{}, n/max(v.groupSize, 1)+1) // closed once a group's first container ran
	for k := range leaders {
		leaders[k] = make(chan struct{})
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < v.parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				id := fmt.Sprintf("study-%s-%d-%d", v.name, iter, i)
				group := ""
				if v.groupSize > 1 {
					group = fmt.Sprintf("study-%s-%d-g%d", v.name, iter, i/v.groupSize)
					if !v.racy && i%v.groupSize != 0 {
						select {
						case <-leaders[i/v.groupSize]:
						case <-ctx.Done():
						}
					}
				}
				pt, err := startTimed(ctx, client, img, id, group)
				if v.groupSize > 1 && i%v.groupSize == 0 {
					close(leaders[i/v.groupSize])
				}
				mu.Lock()
				phases[i] = pt
				if err != nil && firstErr == nil {
					firstErr = err
				}
				done = append(done, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		ids <- i
	}
	close(ids)
	wg.Wait()
	r.total = time.Since(t0)
	if firstErr != nil {
		b.Fatalf("variant %s: %v", v.name, firstErr)
	}
	sys1, kern1 := systemBusy()
	r.sysCPU, r.sysKernel = sys1-sys0, kern1-kern0
	ctd1, _ := procCPU(ctdPid)
	r.ctdCPU = ctd1 - ctd0
	ctdChild1, _ := childCPU(ctdPid)
	r.ctdChildCPU = ctdChild1 - ctdChild0
	self1, _ := procCPU(os.Getpid())
	r.selfCPU = self1 - self0
	for k := 49; k < len(done); k += 50 {
		r.curve = append(r.curve, done[k])
	}
	r.at100 = done[min(99, len(done)-1)]
	r.first = medianPhases(phases[:min(50, n)])
	r.last = medianPhases(phases[max(0, n-50):])

	shims := shimPids(h)
	isShim := map[int]bool{}
	for _, pid := range shims {
		isShim[pid] = true
		c, _ := procCPU(pid)
		r.shimCPU += c
		c, _ = childCPU(pid)
		r.shimChildCPU += c
	}
	if pids, err := allPids(); err == nil {
		for _, pid := range pids {
			if ppid, _, err := procParent(pid); err == nil && isShim[ppid] {
				c, _ := procCPU(pid)
				r.ctrCPU += c
			}
		}
	}
	// what hundreds of idle shims cost the node by merely existing
	idle0 := sumCPU(append(shims, ctdPid))
	time.Sleep(5 * time.Second)
	r.idleShimCPU = sumCPU(append(shims, ctdPid)) - idle0
	r.after = probeHost(b, h, ctdPid)
	if want := (n + v.groupSize - 1) / v.groupSize; r.after.shims != want && !v.racy {
		b.Errorf("variant %s: %d shims run, want %d (%d containers, %d per shim)", v.name, r.after.shims, want, n, v.groupSize)
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.loadAvg = strings.Join(strings.Fields(string(la))[:3], " ")
	}

	tr := time.Now()
	r.orphans = studyRemoveAll(b, h, 16, 5*time.Minute)
	r.remove = time.Since(tr)
	if r.orphans > 0 && !v.racy {
		b.Errorf("variant %s: %d shims outlived their containers", v.name, r.orphans)
	}
	return r
}

// startTimed is startBare (agent_floor_test.go) timing each call; group,
// when set, puts the container into that shared shim.
func startTimed(ctx context.Context, client *containerd.Client, img containerd.Image, id, group string) (phaseTimes, error) {
	var pt phaseTimes
	specOpts := []oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("/testapp", "sleep", "1h")}
	if group != "" {
		specOpts = append(specOpts, oci.WithAnnotations(map[string]string{shimGroupAnnotation: group}))
	}
	t := time.Now()
	c, err := client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(specOpts...))
	pt.create = time.Since(t)
	if err != nil {
		return pt, fmt.Errorf("create %s: %w", id, err)
	}
	t = time.Now()
	task, err := c.NewTask(ctx, cio.NullIO)
	pt.newTask = time.Since(t)
	if err != nil {
		return pt, fmt.Errorf("new task %s: %w", id, err)
	}
	t = time.Now()
	err = task.Start(ctx)
	pt.start = time.Since(t)
	if err != nil {
		return pt, fmt.Errorf("start %s: %w", id, err)
	}
	return pt, nil
}

func medianPhases(ps []phaseTimes) phaseTimes {
	pick := func(f func(phaseTimes) time.Duration) time.Duration {
		ds := make([]time.Duration, len(ps))
		for i, p := range ps {
			ds[i] = f(p)
		}
		return medianDuration(ds)
	}
	return phaseTimes{
		create:  pick(func(p phaseTimes) time.Duration { return p.create }),
		newTask: pick(func(p phaseTimes) time.Duration { return p.newTask }),
		start:   pick(func(p phaseTimes) time.Duration { return p.start }),
	}
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// timeMedian runs f k times and returns the median duration.
func timeMedian(k int, f func()) time.Duration {
	ds := make([]time.Duration, k)
	for i := range ds {
		t := time.Now()
		f()
		ds[i] = time.Since(t)
	}
	return medianDuration(ds)
}

// probeHost measures the per-operation costs that could grow with the
// number of containers: the mount table, a cgroup v1 mkdir, a process
// start; and counts the shims and their memory.
func probeHost(tb testing.TB, h *containerdtest.Harness, ctdPid int) hostProbe {
	tb.Helper()
	var p hostProbe
	mi := fmt.Sprintf("/proc/%d/mountinfo", ctdPid)
	if data, err := os.ReadFile(mi); err == nil {
		p.mountLines = strings.Count(string(data), "\n")
	}
	p.mountRead = timeMedian(20, func() {
		if data, err := os.ReadFile(mi); err == nil {
			_ = strings.Split(string(data), "\n")
		}
	})
	cg := filepath.Join("/sys/fs/cgroup/memory", h.Namespace+"-probe")
	p.cgroupMkdir = timeMedian(5, func() {
		if err := os.Mkdir(cg, 0o755); err == nil {
			_ = os.Remove(cg)
		}
	})
	p.execShim = timeMedian(3, func() { _ = exec.Command("containerd-shim-runc-v2", "-v").Run() })
	shims := shimPids(h)
	p.shims = len(shims)
	for _, pid := range shims {
		if rss, err := procRSS(pid); err == nil {
			p.shimRSS += rss
		}
	}
	p.containerRSS, _ = procRSS(ctdPid)
	return p
}

// cmdlineArgs returns a process's argv.
func cmdlineArgs(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// shimPids lists the long-lived shims serving h's containerd.
func shimPids(h *containerdtest.Harness) []int {
	pids, _ := allPids()
	var out []int
	for _, pid := range pids {
		args := cmdlineArgs(pid)
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		if slices.Contains(args, h.Address) && slices.Contains(args, h.Namespace) && !slices.Contains(args, "start") {
			out = append(out, pid)
		}
	}
	return out
}

// findContainerdPid finds h's containerd by its config file.
func findContainerdPid(h *containerdtest.Harness) (int, error) {
	cfg := filepath.Join(filepath.Dir(h.Root), "state", "config.toml")
	pids, err := allPids()
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		if slices.Contains(cmdlineArgs(pid), cfg) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no containerd process runs with %s", cfg)
}

func sumCPU(pids []int) time.Duration {
	var d time.Duration
	for _, pid := range pids {
		c, _ := procCPU(pid)
		d += c
	}
	return d
}

// systemBusy is the machine's non-idle CPU time so far, and the part of
// it in the kernel (system, irq, softirq), from /proc/stat.
func systemBusy() (busy, kernel time.Duration) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	var b, k int64
	for i, s := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		b += v
		if i >= 2 && i <= 5 { // system, (idle, iowait skipped), irq, softirq
			k += v
		}
	}
	return time.Duration(b) * clockTick, time.Duration(k) * clockTick
}

// childCPU is the user+system CPU of a process's reaped children
// (/proc/PID/stat fields 16 and 17, cutime and cstime).
func childCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: odd stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("pid %d: odd stat", pid)
	}
	u, err1 := strconv.ParseInt(f[13], 10, 64)
	s, err2 := strconv.ParseInt(f[14], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: odd stat times", pid)
	}
	return time.Duration(u+s) * clockTick, nil
}

// studyRemoveAll kills and deletes every container in h's namespace,
// parallel at a time, and waits until their shims are gone; shims still
// there 20 s after the last container went are orphans: it kills them
// and returns how many there were.
func studyRemoveAll(tb testing.TB, h *containerdtest.Harness, parallel int, timeout time.Duration) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(h.Context(context.Background()), timeout)
	defer cancel()
	if err := killAndDeleteAll(ctx, h.Client(), parallel); err != nil {
		tb.Error(err)
		return 0
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		left := shimPids(h)
		if len(left) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL) // ours: they serve this benchmark's private containerd
			}
			return len(left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logStudy(b *testing.B, results []studyResult, n int) {
	b.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "containerd floor study, %d containers per variant, %d CPUs\n", n, runtime.NumCPU())
	fmt.Fprintf(&sb, "%-8s %7s %7s %6s %6s %5s %9s %8s %8s %8s %7s %6s %8s  %s\n",
		"variant", "t100 s", "tN s", "/s", "shims", "orph", "shimRSS", "ctdCPU", "sysCPU", "shimCPU", "idle5s", "rm s", "load", "curve (s at every 50th)")
	for _, r := range results {
		var curve []string
		for _, c := range r.curve {
			curve = append(curve, fmt.Sprintf("%.1f", c.Seconds()))
		}
		fmt.Fprintf(&sb, "%-8s %7.1f %7.1f %6.1f %6d %5d %8.0fM %7.1fs %7.1fs %7.1fs %6.2fs %6.1f %8s  %s\n",
			r.v.name, r.at100.Seconds(), r.total.Seconds(), float64(n)/r.total.Seconds(),
			r.after.shims, r.orphans, float64(r.after.shimRSS)/(1<<20), r.ctdCPU.Seconds(), r.sysCPU.Seconds(),
			r.shimCPU.Seconds(), r.idleShimCPU.Seconds(), r.remove.Seconds(), r.loadAvg, strings.Join(curve, " "))
	}
	fmt.Fprintf(&sb, "\nCPU seconds during the starts: machine (kernel part) = containerd + its reaped children (shim start) + shims + their reaped children (runc create/start) + containers (runc init, testapp) + this client + the rest (kernel threads, other work)\n")
	for _, r := range results {
		ours := r.ctdCPU + r.ctdChildCPU + r.shimCPU + r.shimChildCPU + r.ctrCPU + r.selfCPU
		fmt.Fprintf(&sb, "%-8s %6.1f (%5.1f) = %5.1f + %5.1f + %5.1f + %5.1f + %5.1f + %5.1f + %5.1f   per container %3.0f ms\n", r.v.name,
			r.sysCPU.Seconds(), r.sysKernel.Seconds(), r.ctdCPU.Seconds(), r.ctdChildCPU.Seconds(), r.shimCPU.Seconds(),
			r.shimChildCPU.Seconds(), r.ctrCPU.Seconds(), r.selfCPU.Seconds(), (r.sysCPU - ours).Seconds(), float64(ours.Milliseconds())/float64(n))
	}
	fmt.Fprintf(&sb, "\nphase medians (ms), first 50 vs last 50 submitted: create / newTask / start\n")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, r := range results {
		fmt.Fprintf(&sb, "%-8s first %6.0f %6.0f %6.0f   last %6.0f %6.0f %6.0f\n", r.v.name,
			ms(r.first.create), ms(r.first.newTask), ms(r.first.start), ms(r.last.create), ms(r.last.newTask), ms(r.last.start))
	}
	fmt.Fprintf(&sb, "\nnode probes, before vs with all running: mountinfo lines, its read (µs), cgroup mkdir+rmdir (µs), exec shim -v (ms), containerd RSS (MiB)\n")
	us := func(d time.Duration) int64 { return d.Microseconds() }
	for _, r := range results {
		fmt.Fprintf(&sb, "%-8s mountinfo %4d→%4d  read %5d→%5d  cgroup %5d→%5d  exec %5.1f→%5.1f  ctdRSS %3.0f→%3.0f\n", r.v.name,
			r.before.mountLines, r.after.mountLines, us(r.before.mountRead), us(r.after.mountRead),
			us(r.before.cgroupMkdir), us(r.after.cgroupMkdir), ms(r.before.execShim), ms(r.after.execShim),
			float64(r.before.containerRSS)/(1<<20), float64(r.after.containerRSS)/(1<<20))
	}
	// stdout, not b.Log: the testing package cuts a benchmark's log to a
	// few lines without -v, and this table is the benchmark's point
	fmt.Print(sb.String())
}
