package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent"
	"github.com/berth-dev/berth/agent/internal/hostproctest"
	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

const testTTL = 400 * time.Millisecond

func cluster(t *testing.T, n int) *servertest.Cluster {
	return servertest.NewCluster(t, n, servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.MinHeartbeatTTL = testTTL
		cfg.HeartbeatGrace = testTTL / 2
		cfg.FailoverHeartbeatTTL = testTTL
	}))
}

func apiClient(t *testing.T, c *servertest.Cluster) *api.Client {
	cl, err := api.NewClient(&api.Config{Address: c.HTTPAddrs()[0]})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

type logWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		func() {
			defer func() {
				if recover() != nil {
					w.done = true
				}
			}()
			w.t.Log(strings.TrimSpace(string(p)))
		}()
	}
	return len(p), nil
}

// agentConfig is an agent on loopback that finds the servers by gossip
// and runs tasks with the in-process host-process driver.
func agentConfig(t *testing.T, c *servertest.Cluster, name, dataDir string, d *hostproctest.Driver) agent.Config {
	// runs after the agents' own cleanup (LIFO): an agent's Shutdown leaves
	// its tasks running, as it should, but a test must not
	t.Cleanup(func() {
		for _, id := range d.TaskIDs() {
			_ = d.DestroyTask(context.Background(), id, true)
		}
	})
	var join []string
	for _, s := range c.Servers() {
		if s != nil {
			join = append(join, s.GossipAddr())
		}
	}
	return agent.Config{
		DataDir: dataDir, NodeName: name, BindAddr: "127.0.0.1", GossipLocal: true,
		Join: join, DisableBuiltinPlugins: true, RawExecEnabled: true,
		Drivers: map[string]driver.Driver{"raw_exec": d},
	}
}

func startAgent(t *testing.T, cfg agent.Config) *agent.Agent {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(&logWriter{t: t}, &slog.HandlerOptions{Level: testLogLevel}))
	a, err := agent.New(cfg, logger.With("agent", cfg.NodeName))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Shutdown)
	select {
	case <-a.Registered():
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not register")
	}
	return a
}

func shTask(name, script string) *structs.Task {
	return &structs.Task{
		Name: name, Driver: "raw_exec", KillTimeout: 2 * time.Second,
		Config:    map[string]any{"command": "/bin/sh", "args": []any{"-c", script}},
		Resources: &structs.Resources{CPU: 50, MemoryMB: 32},
	}
}

func testJob(id, typ string, count int, tasks ...*structs.Task) *structs.Job {
	return &structs.Job{
		ID: id, Name: id, Type: typ, Datacenters: []string{"dc1"},
		TaskGroups: []*structs.TaskGroup{{
			Name: "g", Count: count, Tasks: tasks,
			RestartPolicy: &structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Delay: 10 * time.Millisecond, Mode: structs.RestartPolicyModeFail},
		}},
	}
}

func jobAllocs(t *testing.T, cl *api.Client, jobID string) []*structs.AllocListStub {
	allocs, _, err := cl.Jobs().Allocations(jobID, nil)
	if err != nil {
		t.Logf("list allocs: %v", err)
		return nil
	}
	return allocs
}

func TestAgentRegistersAndRunsBatchJob(t *testing.T) {
	c := cluster(t, 1)
	cl := apiClient(t, c)
	a := startAgent(t, agentConfig(t, c, "agent-1", t.TempDir(), hostproctest.New("raw_exec")))

	node, _, err := cl.Nodes().Info(a.NodeID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"driver.raw_exec", "cpu.numcores", "cpu.totalcompute", "kernel.name", "os.cgroups.version", "unique.hostname", "nomad.version"} {
		if node.Attributes[attr] == "" {
			t.Errorf("node attribute %s missing", attr)
		}
	}
	if node.HTTPAddr != a.HTTPAddr() || node.Drivers["raw_exec"] == nil || !node.Drivers["raw_exec"].Healthy {
		t.Fatalf("node http addr %q (agent %q), drivers %v", node.HTTPAddr, a.HTTPAddr(), node.Drivers)
	}
	if node.NodeResources.Cpu.CpuShares <= 0 || node.NodeResources.Memory.MemoryMB <= 0 {
		t.Fatalf("resources %+v", node.NodeResources)
	}

	job := testJob("hello", structs.JobTypeBatch, 1, shTask("say", `echo hello from $NOMAD_TASK_NAME`))
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	var seen time.Time
	servertest.WaitFor(t, 20*time.Second, "batch alloc complete", func() bool {
		for _, al := range jobAllocs(t, cl, job.ID) {
			allocID, seen = al.ID, time.Now()
			return al.ClientStatus == structs.AllocClientStatusComplete
		}
		return false
	})
	full, _, err := cl.Allocations().Info(allocID, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := full.TaskStates["say"]
	if st == nil || st.State != "dead" || st.Failed || st.FinishedAt.IsZero() {
		t.Fatalf("task state %+v", st)
	}
	// target: complete visible < 150 ms after the task exits (batched
	// updates flush within 20 ms); the bound here is loose for -race on
	// busy machines, the log line shows the real figure
	lag := seen.Sub(st.FinishedAt)
	t.Logf("task exit → complete visible in the API: %s", lag)
	if lag > time.Second {
		t.Errorf("complete visible %s after the task exited, want well under 1s", lag)
	}

	// the logs are served by the agent's own API
	url := fmt.Sprintf("http://%s/v1/client/fs/logs/%s?task=say&type=stdout&plain=true&origin=start", a.HTTPAddr(), allocID)
	servertest.WaitFor(t, 5*time.Second, "logs via the agent API", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && string(b) == "hello from say\n"
	})
}

func TestAgentStopJobStopsTask(t *testing.T) {
	c := cluster(t, 1)
	cl := apiClient(t, c)
	d := hostproctest.New("raw_exec")
	startAgent(t, agentConfig(t, c, "agent-1", t.TempDir(), d))
	job := testJob("web", structs.JobTypeService, 1, shTask("web", `sleep 60`))
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 20*time.Second, "alloc running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusRunning
	})
	if len(d.TaskIDs()) != 1 {
		t.Fatalf("driver runs %v, want one task", d.TaskIDs())
	}
	if _, _, err := cl.Jobs().Deregister(job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 20*time.Second, "alloc complete and task gone", func() bool {
		al := jobAllocs(t, cl, job.ID)
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusComplete && len(d.TaskIDs()) == 0
	})
}

// An agent restarted on the same data dir re-attaches to its running
// task instead of starting it again.
func TestAgentRestartRecoversRunningTask(t *testing.T) {
	c := cluster(t, 1)
	cl := apiClient(t, c)
	d := hostproctest.New("raw_exec")
	dir := t.TempDir()
	cfg := agentConfig(t, c, "agent-1", dir, d)
	a := startAgent(t, cfg)
	job := testJob("web", structs.JobTypeService, 1, shTask("web", `echo start >> "$NOMAD_ALLOC_DIR/starts"; exec sleep 60`))
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 20*time.Second, "alloc running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 {
			allocID = al[0].ID
		}
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusRunning
	})
	nodeID := a.NodeID()
	a.Shutdown()

	// the driver stands for plugin processes that die with the agent:
	// the new agent must find the task by its persisted handle
	d.Forget()
	b := startAgent(t, cfg)
	if b.NodeID() != nodeID {
		t.Fatalf("node ID changed across restart: %s → %s", nodeID, b.NodeID())
	}
	servertest.WaitFor(t, 10*time.Second, "task recovered", func() bool {
		for _, al := range b.Allocs() {
			if al.ID == allocID && al.ClientStatus == structs.AllocClientStatusRunning && len(d.TaskIDs()) == 1 {
				return true
			}
		}
		return false
	})
	// give a wrongly restarted task time to show up
	time.Sleep(300 * time.Millisecond)
	starts, err := os.ReadFile(filepath.Join(dir, "alloc", allocID, "alloc", "starts"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(starts), "start"); n != 1 || d.Starts(allocID+"/web") != 1 {
		t.Fatalf("task started %d times (driver: %d), want once", n, d.Starts(allocID+"/web"))
	}
	// and the recovered task is still under control: stopping the job stops it
	if _, _, err := cl.Jobs().Deregister(job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 20*time.Second, "recovered task stopped", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if testLogLevel == slog.LevelDebug && len(al) == 1 {
			t.Logf("alloc %s desired %s tasks %v; agent sees %+v", al[0].ClientStatus, al[0].DesiredStatus, d.TaskIDs(), b.Allocs()[0].TaskStates["web"])
		}
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusComplete && len(d.TaskIDs()) == 0
	})
}

// Two agents, three servers: an agent that vanishes without a word is
// marked down and its allocation is replaced on the other.
func TestAgentLostNodeAllocsReplaced(t *testing.T) {
	c := cluster(t, 3)
	cl := apiClient(t, c)
	d1, d2 := hostproctest.New("raw_exec"), hostproctest.New("raw_exec")
	a1 := startAgent(t, agentConfig(t, c, "agent-1", t.TempDir(), d1))
	a2 := startAgent(t, agentConfig(t, c, "agent-2", t.TempDir(), d2))
	job := testJob("web", structs.JobTypeService, 1, shTask("web", `exec sleep 60`))
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var first *structs.AllocListStub
	servertest.WaitFor(t, 20*time.Second, "alloc running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusRunning {
			first = al[0]
			return true
		}
		return false
	})
	victim, survivor := a1, a2
	if first.NodeID == a2.NodeID() {
		victim, survivor = a2, a1
	}
	victim.Shutdown()
	servertest.WaitFor(t, 20*time.Second, "victim node down", func() bool {
		n, _, err := cl.Nodes().Info(victim.NodeID(), nil)
		return err == nil && n.Status == structs.NodeStatusDown
	})
	servertest.WaitFor(t, 30*time.Second, "replacement running on the survivor", func() bool {
		for _, al := range jobAllocs(t, cl, job.ID) {
			if al.ID != first.ID && al.NodeID == survivor.NodeID() && al.ClientStatus == structs.AllocClientStatusRunning {
				return true
			}
		}
		return false
	})
}

var testLogLevel = func() slog.Level {
	if os.Getenv("BERTH_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

// A task that died while its agent was down is noticed when the agent
// comes back, and restarted per its restart policy.
func TestAgentRestartNoticesTaskDiedMeanwhile(t *testing.T) {
	c := cluster(t, 1)
	cl := apiClient(t, c)
	d := hostproctest.New("raw_exec")
	dir := t.TempDir()
	cfg := agentConfig(t, c, "agent-1", dir, d)
	a := startAgent(t, cfg)
	job := testJob("web", structs.JobTypeService, 1, shTask("web", `echo start >> "$NOMAD_ALLOC_DIR/starts"; exec sleep 60`))
	job.TaskGroups[0].RestartPolicy = &structs.RestartPolicy{Attempts: 2, Interval: time.Hour, Delay: 10 * time.Millisecond, Mode: structs.RestartPolicyModeFail}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 20*time.Second, "alloc running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 {
			allocID = al[0].ID
		}
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusRunning
	})
	a.Shutdown()
	// the task dies while no agent watches it
	if err := d.DestroyTask(context.Background(), allocID+"/web", true); err != nil {
		t.Fatal(err)
	}
	b := startAgent(t, cfg)
	startsFile := filepath.Join(dir, "alloc", allocID, "alloc", "starts")
	servertest.WaitFor(t, 15*time.Second, "task restarted once", func() bool {
		b2, _ := os.ReadFile(startsFile)
		if strings.Count(string(b2), "start") != 2 {
			return false
		}
		for _, al := range b.Allocs() {
			if st := al.TaskStates["web"]; al.ID == allocID && st.State == "running" && st.Restarts == 1 {
				return true
			}
		}
		return false
	})
	servertest.WaitFor(t, 10*time.Second, "servers see the restart", func() bool {
		full, _, err := cl.Allocations().Info(allocID, nil)
		return err == nil && full.ClientStatus == structs.AllocClientStatusRunning && full.TaskStates["web"].Restarts == 1
	})
}

// exec, signal, restart and stats reach the agent through the servers'
// proxy of the client API.
func TestAgentClientAPIThroughServers(t *testing.T) {
	c := cluster(t, 1)
	cl := apiClient(t, c)
	d := hostproctest.New("raw_exec")
	dir := t.TempDir()
	startAgent(t, agentConfig(t, c, "agent-1", dir, d))
	job := testJob("web", structs.JobTypeService, 1, shTask("web",
		`trap 'echo hup >> "$NOMAD_ALLOC_DIR/signals"' HUP; echo up >> "$NOMAD_ALLOC_DIR/starts"; while :; do sleep 0.05; done`))
	job.TaskGroups[0].RestartPolicy = &structs.RestartPolicy{Attempts: 0, Interval: time.Hour, Delay: 10 * time.Millisecond, Mode: structs.RestartPolicyModeFail}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 20*time.Second, "alloc running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 {
			allocID = al[0].ID
		}
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusRunning
	})
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := cl.Allocations().Exec(ctx, allocID, "web", false, []string{"/bin/sh", "-c", "echo exec-ok; exit 4"}, nil, &out, io.Discard, nil, nil)
	if err != nil || code != 4 || out.String() != "exec-ok\n" {
		t.Fatalf("exec: code %d err %v out %q", code, err, out.String())
	}
	if _, err := cl.Allocations().Stats(allocID, nil); err != nil {
		t.Fatalf("stats: %v", err)
	}
	if err := cl.Allocations().Signal(allocID, "web", "SIGHUP", nil); err != nil {
		t.Fatalf("signal: %v", err)
	}
	servertest.WaitFor(t, 10*time.Second, "SIGHUP delivered", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "alloc", allocID, "alloc", "signals"))
		return string(b) == "hup\n"
	})
	if err := cl.Allocations().Restart(allocID, "web", false, nil); err != nil {
		t.Fatalf("restart: %v", err)
	}
	servertest.WaitFor(t, 20*time.Second, "restart visible, not counted against the policy", func() bool {
		full, _, err := cl.Allocations().Info(allocID, nil)
		if err != nil {
			return false
		}
		st := full.TaskStates["web"]
		return full.ClientStatus == structs.AllocClientStatusRunning && st.Restarts == 1 && st.State == "running" && d.Starts(allocID+"/web") == 2
	})
	if err := cl.Allocations().Signal(allocID, "nope", "SIGHUP", nil); !api.IsNotFound(err) {
		t.Fatalf("signal to an unknown task: %v, want 404", err)
	}
}
