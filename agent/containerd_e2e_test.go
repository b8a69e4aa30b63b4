package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/snapshots"

	"github.com/berth-dev/berth/agent"
	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

var (
	berthOnce sync.Once
	berthBin  string
	berthErr  error
)

// berthBinary builds the berth binary once per test run: the agent
// launches its plugins by re-executing it, as in production.
func berthBinary(t *testing.T) string {
	t.Helper()
	berthOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-bin-")
		if err != nil {
			berthErr = err
			return
		}
		berthBin = filepath.Join(dir, "berth")
		out, err := exec.Command("go", "build", "-o", berthBin, "github.com/berth-dev/berth").CombinedOutput()
		if err != nil {
			berthErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if berthErr != nil {
		t.Fatal(berthErr)
	}
	return berthBin
}

func dockerTask(name, image string, args ...string) *structs.Task {
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	return &structs.Task{
		Name: name, Driver: "docker", KillTimeout: 2 * time.Second,
		Config:    map[string]any{"image": image, "args": a},
		Resources: &structs.Resources{CPU: 50, MemoryMB: 32},
	}
}

// berth-dev style, for real: servers and agent in process, the driver
// plugins out of process (the berth binary), tasks in containerd.
func TestAgentContainerdEndToEnd(t *testing.T) {
	h := containerdtest.Start(t)
	reg := containerdtest.Registry(t)
	image := containerdtest.BuildTestImage(t, reg, "e2e/app", "v1")
	bin := berthBinary(t)

	c := cluster(t, 1)
	cl := apiClient(t, c)
	a := startAgent(t, agent.Config{
		DataDir: t.TempDir(), NodeName: "ctr-agent", BindAddr: "127.0.0.1", GossipPort: -1,
		Servers: c.HTTPAddrs(),
		PluginCommand: func(name string) *exec.Cmd {
			return exec.Command(bin, "plugin", name)
		},
		Containerd: agent.ContainerdConfig{Address: h.Address, Namespace: h.Namespace, InsecureRegistries: []string{reg.Host}},
	})
	node, _, err := cl.Nodes().Info(a.NodeID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if node.Attributes["driver.docker"] != "1" || node.Attributes["driver.containerd"] != "1" {
		t.Fatalf("containerd drivers not healthy on the node: %v", node.Drivers)
	}

	// three tasks in one allocation, all in containerd
	job := testJob("trio", structs.JobTypeService, 1,
		dockerTask("web", image, "print", "web-out", "web-err", "sleep", "120s"),
		dockerTask("side", image, "print", "side-out", "side-err", "sleep", "120s"),
		dockerTask("third", image, "sleep", "120s"),
	)
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 60*time.Second, "trio running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 {
			allocID = al[0].ID
			for _, st := range al[0].TaskStates {
				if st.State != "running" {
					return false
				}
			}
			return al[0].ClientStatus == structs.AllocClientStatusRunning && len(al[0].TaskStates) == 3
		}
		return false
	})
	for task, want := range map[string]string{"web": "web-out\n", "side": "side-out\n"} {
		url := fmt.Sprintf("http://%s/v1/client/fs/logs/%s?task=%s&type=stdout&plain=true&origin=start", a.HTTPAddr(), allocID, task)
		servertest.WaitFor(t, 10*time.Second, task+" logs", func() bool {
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == 200 && string(b) == want
		})
	}

	// job stop leaves nothing behind
	if _, _, err := cl.Jobs().Deregister(job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 30*time.Second, "trio complete", func() bool {
		al := jobAllocs(t, cl, job.ID)
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusComplete
	})
	ctx := h.Context(context.Background())
	servertest.WaitFor(t, 15*time.Second, "no containers, snapshots, mounts or cgroups left", func() bool {
		ctrs, err := h.Client().Containers(ctx)
		if err != nil || len(ctrs) != 0 {
			return false
		}
		left := 0
		_ = h.Client().SnapshotService("overlayfs").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			if strings.Contains(info.Name, allocID) {
				left++
			}
			return nil
		})
		if left != 0 {
			return false
		}
		mounts, err := containerdtest.MountsContaining(allocID)
		if err != nil || len(mounts) != 0 {
			return false
		}
		cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + h.Namespace + "/" + allocID + "*")
		cg2, _ := filepath.Glob("/sys/fs/cgroup/unified/" + h.Namespace + "/" + allocID + "*")
		return len(cg) == 0 && len(cg2) == 0
	})

	// a task that exits non-zero: restarted per policy, then the alloc
	// fails and the servers reschedule it
	bad := testJob("bad", structs.JobTypeService, 1, dockerTask("bad", image, "print", "x", "y", "exit", "3"))
	bad.TaskGroups[0].RestartPolicy = &structs.RestartPolicy{Attempts: 1, Interval: time.Hour, Delay: 100 * time.Millisecond, Mode: structs.RestartPolicyModeFail}
	bad.TaskGroups[0].ReschedulePolicy = &structs.ReschedulePolicy{Attempts: 1, Interval: time.Hour, Delay: 5 * time.Second, DelayFunction: structs.DelayFunctionConstant}
	if _, _, err := cl.Jobs().Register(bad, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 60*time.Second, "bad alloc failed after one restart, then rescheduled", func() bool {
		allocs := jobAllocs(t, cl, bad.ID)
		failed := false
		for _, al := range allocs {
			st := al.TaskStates["bad"]
			if al.ClientStatus == structs.AllocClientStatusFailed && st != nil && st.Restarts == 1 && st.Failed {
				failed = true
			}
		}
		// the replacement is a second allocation of the group
		return failed && len(allocs) >= 2
	})
	if _, _, err := cl.Jobs().Deregister(bad.ID, false, nil); err != nil {
		t.Fatal(err)
	}
}

// The agent restarts (and a plugin crashes) under running containers:
// they keep running and are re-attached; one that died meanwhile is
// noticed and restarted per policy.
func TestAgentContainerdRestartAndPluginCrash(t *testing.T) {
	h := containerdtest.Start(t)
	reg := containerdtest.Registry(t)
	image := containerdtest.BuildTestImage(t, reg, "e2e/app", "v1")
	bin := berthBinary(t)
	c := cluster(t, 1)
	cl := apiClient(t, c)
	cfg := agent.Config{
		DataDir: t.TempDir(), NodeName: "ctr-agent", BindAddr: "127.0.0.1", GossipPort: -1,
		Servers:       c.HTTPAddrs(),
		PluginCommand: func(name string) *exec.Cmd { return exec.Command(bin, "plugin", name) },
		Containerd:    agent.ContainerdConfig{Address: h.Address, Namespace: h.Namespace, InsecureRegistries: []string{reg.Host}},
	}
	a := startAgent(t, cfg)
	job := testJob("pair", structs.JobTypeService, 1,
		dockerTask("keep", image, "sleep", "300s"),
		dockerTask("dies", image, "sleep", "300s"),
	)
	job.TaskGroups[0].RestartPolicy = &structs.RestartPolicy{Attempts: 2, Interval: time.Hour, Delay: 100 * time.Millisecond, Mode: structs.RestartPolicyModeFail}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 60*time.Second, "pair running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) != 1 || len(al[0].TaskStates) != 2 {
			return false
		}
		allocID = al[0].ID
		for _, st := range al[0].TaskStates {
			if st.State != "running" {
				return false
			}
		}
		return true
	})
	ctx := h.Context(context.Background())
	pidOf := func(task string) uint32 {
		ctr, err := h.Client().LoadContainer(ctx, allocID+"-"+task)
		if err != nil {
			t.Fatalf("load container %s: %v", task, err)
		}
		tk, err := ctr.Task(ctx, nil)
		if err != nil {
			t.Fatalf("task of %s: %v", task, err)
		}
		return tk.Pid()
	}
	keepPid := pidOf("keep")

	// the agent goes away (its plugins die with it); one container dies
	a.Shutdown()
	ctr, err := h.Client().LoadContainer(ctx, allocID+"-dies")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exitCh, err := tk.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Kill(ctx, 9); err != nil {
		t.Fatal(err)
	}
	<-exitCh

	b := startAgent(t, cfg)
	servertest.WaitFor(t, 30*time.Second, "keep re-attached, dies restarted once", func() bool {
		for _, al := range b.Allocs() {
			if al.ID != allocID {
				continue
			}
			k, d := al.TaskStates["keep"], al.TaskStates["dies"]
			return k.State == "running" && k.Restarts == 0 && d.State == "running" && d.Restarts == 1
		}
		return false
	})
	if got := pidOf("keep"); got != keepPid {
		t.Fatalf("keep's container was restarted: pid %d → %d", keepPid, got)
	}

	// the driver plugin crashes: relaunched, its tasks recovered
	pid := b.PluginPids()["drivers"]
	if pid == 0 {
		t.Fatalf("no driver plugin pid: %v", b.PluginPids())
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 30*time.Second, "plugin relaunched", func() bool {
		p := b.PluginPids()["drivers"]
		return p != 0 && p != pid
	})
	// the recovered tasks are still under control: stop works
	if _, _, err := cl.Jobs().Deregister(job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 30*time.Second, "pair stopped, containers gone", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) != 1 || al[0].ClientStatus != structs.AllocClientStatusComplete {
			return false
		}
		ctrs, err := h.Client().Containers(ctx)
		return err == nil && len(ctrs) == 0
	})
}

// An executable in the plugin dir is launched and serves the drivers it
// fingerprints (here the exec plugin, through a wrapper script).
func TestAgentExternalPluginDir(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root")
		}
		t.Skip("this test needs root")
	}
	bin := berthBinary(t)
	pluginDir := t.TempDir()
	script := "#!/bin/sh\nexec " + bin + " plugin exec\n"
	if err := os.WriteFile(filepath.Join(pluginDir, "my-exec"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := cluster(t, 1)
	cl := apiClient(t, c)
	a := startAgent(t, agent.Config{
		DataDir: t.TempDir(), NodeName: "ext-agent", BindAddr: "127.0.0.1", GossipPort: -1,
		Servers: c.HTTPAddrs(), PluginDir: pluginDir, DisableBuiltinPlugins: true, RawExecEnabled: true,
	})
	if pids := a.PluginPids(); pids["my-exec"] == 0 || len(pids) != 1 {
		t.Fatalf("plugin pids %v, want only my-exec", pids)
	}
	job := testJob("ext", structs.JobTypeBatch, 1, shTask("t", `echo via-plugin`))
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	waitCompleteWithOutput(t, cl, a, job.ID, "t", "via-plugin\n", 30*time.Second)
}

// Registry mirrors from the agent config: an unmodified docker.io image
// name ("redis:7") is pulled from the mirror, as air-gapped clusters do.
func TestAgentContainerdRegistryMirror(t *testing.T) {
	h := containerdtest.Start(t)
	reg := containerdtest.Registry(t)
	containerdtest.BuildTestImage(t, reg, "library/redis", "7")
	bin := berthBinary(t)
	c := cluster(t, 1)
	cl := apiClient(t, c)
	a := startAgent(t, agent.Config{
		DataDir: t.TempDir(), NodeName: "mirror-agent", BindAddr: "127.0.0.1", GossipPort: -1,
		Servers:       c.HTTPAddrs(),
		PluginCommand: func(name string) *exec.Cmd { return exec.Command(bin, "plugin", name) },
		Containerd: agent.ContainerdConfig{
			Address: h.Address, Namespace: h.Namespace,
			Mirrors:            map[string][]string{"docker.io": {"http://" + reg.Host}},
			InsecureRegistries: []string{reg.Host},
		},
	})
	job := testJob("cache", structs.JobTypeBatch, 1, dockerTask("redis", "redis:7", "print", "mirrored", "err"))
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	waitCompleteWithOutput(t, cl, a, job.ID, "redis", "mirrored\n", 60*time.Second)
}

// waitCompleteWithOutput waits for the job's one allocation to complete
// and for task's stdout, read from the agent, to be want.
func waitCompleteWithOutput(t *testing.T, cl *api.Client, a *agent.Agent, jobID, task, want string, timeout time.Duration) {
	t.Helper()
	var allocID string
	servertest.WaitFor(t, timeout, "job "+jobID+"'s allocation complete", func() bool {
		al := jobAllocs(t, cl, jobID)
		if len(al) == 1 {
			allocID = al[0].ID
		}
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusComplete
	})
	url := fmt.Sprintf("http://%s/v1/client/fs/logs/%s?task=%s&type=stdout&plain=true&origin=start", a.HTTPAddr(), allocID, task)
	servertest.WaitFor(t, 10*time.Second, "task output", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b) == want
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if berthBin != "" {
		os.RemoveAll(filepath.Dir(berthBin))
	}
	os.Exit(code)
}
