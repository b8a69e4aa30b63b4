package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

var (
	agentBinFlag  = flag.String("berth.agent-bin", "", "run this berth binary as the agent instead of building one")
	agentLogFlag  = flag.String("berth.agent-log", "", "keep the agent's log (at level info) in this file")
	agentTagsFlag = flag.String("berth.agent-tags", "", "build tags for the agent's berth binary (e.g. no_dynamic_plugins)")
)

// agentBinary is the berth binary the agent runs: -berth.agent-bin, or
// one built now (with -berth.agent-tags).
func agentBinary(tb testing.TB) string {
	tb.Helper()
	if *agentBinFlag != "" {
		bin, err := filepath.Abs(*agentBinFlag)
		if err != nil {
			tb.Fatalf("-berth.agent-bin: %v", err)
		}
		return bin
	}
	if *agentTagsFlag == "" {
		return buildBerth(tb)
	}
	bin := filepath.Join(tb.TempDir(), "berth")
	out, err := exec.Command("go", "build", "-tags", *agentTagsFlag, "-o", bin, "github.com/berth-dev/berth").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build -tags %s berth: %v\n%s", *agentTagsFlag, err, out)
	}
	return bin
}

// agentEnv is what every agent benchmark runs on: a private containerd,
// an in-process registry holding the test image, one in-process server,
// and one `berth agent` process (its driver plugins are its children, as
// in production) registered with that server.
type agentEnv struct {
	tb     testing.TB
	ctd    *containerdtest.Harness
	image  string // registry reference of the test image
	server *servertest.Cluster
	api    *api.Client
	bin    string
	agent  *exec.Cmd
	nodeID string
	events *ctdEvents
}

// newAgentEnv sets everything up and waits until the agent's node is
// ready with a healthy docker driver. Without root or containerd the
// benchmark is skipped (failed when CI=true).
func newAgentEnv(tb testing.TB) *agentEnv {
	tb.Helper()
	containerdtest.Require(tb)
	if _, err := exec.LookPath("ctr"); err != nil && os.Getenv("CI") == "true" {
		tb.Fatalf("agent benchmarks need ctr (installed with containerd): %v", err)
	}
	e := &agentEnv{tb: tb}
	e.ctd = containerdtest.Start(tb)
	reg := containerdtest.Registry(tb)
	e.image = containerdtest.BuildTestImage(tb, reg, "bench/app", "v1")
	e.bin = agentBinary(tb)
	e.server = servertest.NewCluster(tb, 1)
	_, srv := e.server.WaitForLeader(15 * time.Second)
	cl, err := api.NewClient(&api.Config{Address: "http://" + srv.HTTPAddr()})
	if err != nil {
		tb.Fatalf("api client: %v", err)
	}
	e.api = cl
	e.events = subscribeEvents(tb, e.ctd)
	e.startAgent(srv.HTTPAddr(), reg.Host)
	return e
}

// startAgent runs `berth agent` against the server at serverAddr, its
// containers in the harness's namespace, and waits for its node.
func (e *agentEnv) startAgent(serverAddr, registryHost string) {
	tb := e.tb
	tb.Helper()
	dir := tb.TempDir()
	port := freePorts(tb, 1)[0]
	args := []string{"agent",
		"-data-dir", filepath.Join(dir, "data"),
		"-node", "bench-agent",
		"-servers", serverAddr,
		"-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(port),
		"-gossip-port", "-1",
		"-containerd-address", e.ctd.Address,
		"-containerd-namespace", e.ctd.Namespace,
		"-insecure-registry", registryHost,
		// host network only: a benchmark must not create berth0 or the
		// nft table on the host
		"-network-plugin", "",
		"-log-level", "warn",
	}
	logPath := filepath.Join(dir, "agent.log")
	if *agentLogFlag != "" {
		logPath, args[len(args)-1] = *agentLogFlag, "info"
	}
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatalf("agent log: %v", err)
	}
	cmd := exec.Command(e.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("start berth agent: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	e.agent = cmd
	// Registered after the harness cleanup, so it runs first (LIFO): the
	// agent and its plugins go before containerd does.
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if tb.Failed() {
			tb.Logf("agent log tail:\n%s", tail(logPath, 4<<10))
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		nodes, _, err := e.api.Nodes().List(nil)
		if err == nil && len(nodes) == 1 && nodes[0].Status == structs.NodeStatusReady &&
			nodes[0].Drivers["docker"] != nil && nodes[0].Drivers["docker"].Healthy {
			e.nodeID = nodes[0].ID
			return
		}
		select {
		case <-done:
			tb.Fatalf("berth agent exited early:\n%s", tail(logPath, 4<<10))
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("agent node not ready with a healthy docker driver after 30s (last error %v):\n%s", err, tail(logPath, 4<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dockerJob is a job of count tasks running the test image with args.
func (e *agentEnv) dockerJob(id, typ string, count int, args ...string) *structs.Job {
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	return &structs.Job{
		ID: id, Name: id, Type: typ, Datacenters: []string{"dc1"},
		TaskGroups: []*structs.TaskGroup{{
			Name: "g", Count: count,
			// Nomad's 300 MB default would exhaust the node's disk at ~240
			EphemeralDisk: &structs.EphemeralDisk{SizeMB: 10}, // > the logs' 2×2 MB
			RestartPolicy: &structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Delay: time.Second, Mode: structs.RestartPolicyModeFail},
			Tasks: []*structs.Task{{
				Name: "t", Driver: "docker", KillTimeout: time.Second,
				Config: map[string]any{"image": e.image, "args": a},
				// small enough that 500 fit on a 2-core, 24 GiB machine
				Resources: &structs.Resources{CPU: 5, MemoryMB: 16},
				LogConfig: &structs.LogConfig{MaxFiles: 2, MaxFileSizeMB: 2},
			}},
		}},
	}
}

// register registers job and returns the index to block on.
func (e *agentEnv) register(job *structs.Job) uint64 {
	e.tb.Helper()
	_, wm, err := e.api.Jobs().Register(job, nil)
	if err != nil {
		e.tb.Fatalf("register %s: %v", job.ID, err)
	}
	return wm.LastIndex
}

// waitAllocs follows the job's allocations with blocking queries from
// index until done says they are what we wait for, and returns them with
// the moment the answer arrived.
func (e *agentEnv) waitAllocs(jobID string, index uint64, timeout time.Duration, done func([]*structs.AllocListStub) bool) ([]*structs.AllocListStub, time.Time) {
	e.tb.Helper()
	deadline := time.Now().Add(timeout)
	var last []*structs.AllocListStub
	for time.Now().Before(deadline) {
		wait := min(time.Until(deadline), 5*time.Second)
		allocs, qm, err := e.api.Jobs().Allocations(jobID, &api.QueryOptions{WaitIndex: index, WaitTime: wait})
		at := time.Now()
		if err != nil {
			e.tb.Fatalf("allocations of %s: %v", jobID, err)
		}
		if done(allocs) {
			return allocs, at
		}
		last = allocs
		if qm.LastIndex > index {
			index = qm.LastIndex
		}
	}
	e.tb.Fatalf("job %s: allocations not as awaited after %s: %s; %s", jobID, timeout, describeAllocs(last), e.describeEvals(jobID))
	return nil, time.Time{}
}

// stopJob deregisters the job and waits until containerd holds no
// container any more, so iterations do not accumulate.
func (e *agentEnv) stopJob(jobID string) {
	e.tb.Helper()
	if _, _, err := e.api.Jobs().Deregister(jobID, false, nil); err != nil {
		e.tb.Fatalf("deregister %s: %v", jobID, err)
	}
	e.waitNoContainers(60 * time.Second)
}

// waitNoContainers waits until the namespace holds no container.
func (e *agentEnv) waitNoContainers(timeout time.Duration) {
	e.tb.Helper()
	ctx := e.ctd.Context(context.Background())
	deadline := time.Now().Add(timeout)
	for {
		ctrs, err := e.ctd.Client().Containers(ctx)
		if err == nil && len(ctrs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("%d containers still there after %s (err %v)", len(ctrs), timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countStatus counts allocations whose client status is status.
func countStatus(allocs []*structs.AllocListStub, status string) int {
	n := 0
	for _, a := range allocs {
		if a.ClientStatus == status {
			n++
		}
	}
	return n
}

func describeAllocs(allocs []*structs.AllocListStub) string {
	counts := map[string]int{}
	for _, a := range allocs {
		counts[a.ClientStatus+"/"+a.DesiredStatus]++
	}
	s := fmt.Sprintf("%d allocs %v", len(allocs), counts)
	for _, a := range allocs {
		if a.ClientStatus == structs.AllocClientStatusFailed || a.ClientStatus == structs.AllocClientStatusPending {
			for name, st := range a.TaskStates {
				if n := len(st.Events); n > 0 {
					ev := st.Events[n-1]
					s += fmt.Sprintf("; e.g. %s task %s: %s %s %s", a.ID, name, ev.Type, ev.DisplayMessage, ev.DriverError)
				}
			}
			break
		}
	}
	return s
}

// describeEvals says why placements are missing, if the evals say.
func (e *agentEnv) describeEvals(jobID string) string {
	evals, _, err := e.api.Jobs().Evaluations(jobID, nil)
	if err != nil {
		return fmt.Sprintf("evaluations: %v", err)
	}
	s := fmt.Sprintf("%d evals:", len(evals))
	for _, ev := range evals {
		s += fmt.Sprintf(" [%s %s %q queued=%v", ev.ID[:8], ev.Status, ev.StatusDescription, ev.QueuedAllocations)
		for tg, m := range ev.FailedTGAllocs {
			s += fmt.Sprintf(" failed %s: exhausted %d %v coalesced %d", tg, m.NodesExhausted, m.DimensionExhausted, m.CoalescedFailures)
		}
		s += "]"
	}
	return s
}

// errNoSample says a measurement is missing for one iteration.
var errNoSample = errors.New("no sample")
