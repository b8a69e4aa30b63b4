package allocrunner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/internal/hostproctest"
	"github.com/berth-dev/berth/agent/state"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

type memStore struct {
	mu    sync.Mutex
	tasks map[string]*state.Task
}

func (m *memStore) PutAlloc(*structs.Allocation) error { return nil }
func (m *memStore) DeleteAlloc(string) error           { return nil }
func (m *memStore) PutTask(allocID, task string, t *state.Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tasks == nil {
		m.tasks = map[string]*state.Task{}
	}
	m.tasks[task] = t
	return nil
}

func shTask(name, script string) *structs.Task {
	return &structs.Task{
		Name: name, Driver: "raw_exec", KillTimeout: 2 * time.Second,
		Config: map[string]any{"command": "/bin/sh", "args": []any{"-c", script}},
	}
}

func testAlloc(jobType string, policy *structs.RestartPolicy, tasks ...*structs.Task) *structs.Allocation {
	return &structs.Allocation{
		ID: fmt.Sprintf("%08x-0000-4000-8000-000000000000", time.Now().UnixNano()&0xffffffff), JobID: "job", TaskGroup: "g", Namespace: "default",
		Job: &structs.Job{ID: "job", Type: jobType, TaskGroups: []*structs.TaskGroup{{Name: "g", Tasks: tasks, RestartPolicy: policy}}},
	}
}

func newTestRunner(t *testing.T, a *structs.Allocation, d driver.Driver) *AllocRunner {
	t.Helper()
	ar, err := New(Config{
		Alloc: a, Region: "global", AllocRoot: t.TempDir(),
		Drivers: func(name string) (driver.Driver, error) {
			if name == "raw_exec" {
				return d, nil
			}
			return nil, fmt.Errorf("no driver %q", name)
		},
		State:  &memStore{},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ar.Destroy(10 * time.Second) })
	return ar
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func waitDone(t *testing.T, ar *AllocRunner, timeout time.Duration) *structs.Allocation {
	t.Helper()
	select {
	case <-ar.WaitCh():
	case <-time.After(timeout):
		t.Fatalf("allocation not done after %s: %+v", timeout, ar.Alloc().TaskStates)
	}
	return ar.Alloc()
}

func eventTypes(st *structs.TaskState) []string {
	var out []string
	for _, e := range st.Events {
		out = append(out, e.Type)
	}
	return out
}

func TestAllocRunnerLifecycleOrder(t *testing.T) {
	pre := shTask("pre", `echo pre >> "$NOMAD_ALLOC_DIR/order"`)
	pre.Lifecycle = &structs.TaskLifecycleConfig{Hook: structs.TaskLifecycleHookPrestart}
	main := shTask("main", `test "$(cat "$NOMAD_ALLOC_DIR/order")" = pre && echo main >> "$NOMAD_ALLOC_DIR/order" && echo hello`)
	post := shTask("post", `echo poststop >> "$NOMAD_ALLOC_DIR/order"`)
	post.Lifecycle = &structs.TaskLifecycleConfig{Hook: structs.TaskLifecycleHookPoststop}
	a := testAlloc(structs.JobTypeBatch, &structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Mode: "fail"}, pre, main, post)
	ar := newTestRunner(t, a, hostproctest.New("raw_exec"))
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	if got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("client status %s (%s), want complete; states %v", got.ClientStatus, got.ClientDescription, eventTypes(got.TaskStates["main"]))
	}
	order, err := os.ReadFile(filepath.Join(ar.AllocDir().SharedDir, "order"))
	if err != nil {
		t.Fatal(err)
	}
	if string(order) != "pre\nmain\npoststop\n" {
		t.Fatalf("order %q", order)
	}
	want := []string{EventReceived, EventSetup, EventDriver, EventStarted, EventTerminated}
	if got := eventTypes(got.TaskStates["main"]); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("main events %v, want %v", got, want)
	}
	// stdout went through the FIFO into the rotated log file
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(ar.LogDir(), "main.stdout.0"))
		if string(b) == "hello\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("main.stdout.0 = %q, want hello", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAllocRunnerRestartsThenFails(t *testing.T) {
	bad := shTask("bad", `echo x >> "$NOMAD_ALLOC_DIR/starts"; exit 3`)
	other := shTask("other", `sleep 30`)
	a := testAlloc(structs.JobTypeService, &structs.RestartPolicy{Attempts: 2, Interval: time.Minute, Delay: 10 * time.Millisecond, Mode: "fail"}, bad, other)
	ar := newTestRunner(t, a, hostproctest.New("raw_exec"))
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	if got.ClientStatus != structs.AllocClientStatusFailed {
		t.Fatalf("client status %s, want failed", got.ClientStatus)
	}
	bs := got.TaskStates["bad"]
	if !bs.Failed || bs.Restarts != 2 || bs.State != TaskStateDead {
		t.Fatalf("bad task: state %s failed %v restarts %d, want dead, failed, 2 restarts", bs.State, bs.Failed, bs.Restarts)
	}
	starts, _ := os.ReadFile(filepath.Join(ar.AllocDir().SharedDir, "starts"))
	if n := strings.Count(string(starts), "x"); n != 3 {
		t.Fatalf("started %d times, want 3", n)
	}
	last := bs.Events[len(bs.Events)-1]
	if last.Type != EventNotRestarting || !last.FailsTask {
		t.Fatalf("last event %s, want %s failing the task", last.Type, EventNotRestarting)
	}
	os := got.TaskStates["other"]
	if os.Failed || os.State != TaskStateDead || !strings.Contains(strings.Join(eventTypes(os), ","), EventSiblingFailed+","+EventKilling+","+EventKilled) {
		t.Fatalf("sibling: %s failed=%v events %v", os.State, os.Failed, eventTypes(os))
	}
}

func TestAllocRunnerStopHonoursKillSignalAndUserRestart(t *testing.T) {
	// the task stops cleanly only on SIGINT (its kill_signal)
	task := shTask("web", `trap 'echo int >> "$NOMAD_ALLOC_DIR/signals"; exit 0' INT; echo up >> "$NOMAD_ALLOC_DIR/starts"; while :; do sleep 0.05; done`)
	task.KillSignal = "SIGINT"
	a := testAlloc(structs.JobTypeService, nil, task)
	d := hostproctest.New("raw_exec")
	ar := newTestRunner(t, a, d)
	ar.Run()
	startsFile := filepath.Join(ar.AllocDir().SharedDir, "starts")
	started := func(n int) func() bool {
		return func() bool { b, _ := os.ReadFile(startsFile); return strings.Count(string(b), "up") == n }
	}
	waitFor(t, 10*time.Second, "running", started(1))
	if err := ar.Restart(context.Background(), "web", false); err != nil {
		t.Fatal(err)
	}
	// the process writes its file before the driver's StartTask returns
	// (and counts it): wait for both, and for the runner to see it run
	waitFor(t, 10*time.Second, "second start", started(2))
	waitFor(t, 10*time.Second, "second start counted and running", func() bool {
		return d.Starts(a.ID+"/web") >= 2 && ar.Alloc().TaskStates["web"].State == TaskStateRunning
	})
	if n := d.Starts(a.ID + "/web"); n != 2 {
		t.Fatalf("driver started the task %d times, want 2", n)
	}
	if st := ar.Alloc().TaskStates["web"]; st.Restarts != 1 {
		t.Fatalf("restarts %d after a user restart, want 1", st.Restarts)
	}
	ar.Kill()
	got := waitDone(t, ar, 10*time.Second)
	if got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("stopped alloc is %s, want complete", got.ClientStatus)
	}
	sig, _ := os.ReadFile(filepath.Join(ar.AllocDir().SharedDir, "signals"))
	if string(sig) != "int\nint\n" {
		t.Fatalf("signals seen %q, want SIGINT twice (restart and stop)", sig)
	}
	evs := eventTypes(got.TaskStates["web"])
	if !strings.Contains(strings.Join(evs, ","), EventKilling+","+EventKilled) {
		t.Fatalf("events %v", evs)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAllocRunnerLeaderDeathKillsOthers(t *testing.T) {
	leader := shTask("leader", `sleep 0.2`)
	leader.Leader = true
	follower := shTask("follower", `sleep 30`)
	a := testAlloc(structs.JobTypeBatch, &structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Mode: "fail"}, leader, follower)
	ar := newTestRunner(t, a, hostproctest.New("raw_exec"))
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	if got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("client status %s, want complete", got.ClientStatus)
	}
	evs := strings.Join(eventTypes(got.TaskStates["follower"]), ",")
	if !strings.Contains(evs, EventLeaderDead+","+EventKilling+","+EventKilled) {
		t.Fatalf("follower events %s", evs)
	}
}

func TestAllocRunnerTemplatesFeedEnvAndFiles(t *testing.T) {
	task := shTask("web", `test "$GREETING" = "hello web" && test "$(cat "$NOMAD_TASK_DIR/conf.txt")" = "task=web"`)
	task.Env = map[string]string{"GREETING": "overridden"}
	task.Templates = []*structs.Template{
		{EmbeddedTmpl: "GREETING=hello {{ env \"NOMAD_TASK_NAME\" }}\n", DestPath: "local/env.txt", Envvars: true},
		{EmbeddedTmpl: "task={{ env \"NOMAD_TASK_NAME\" }}", DestPath: "local/conf.txt"},
	}
	a := testAlloc(structs.JobTypeBatch, &structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Mode: "fail"}, task)
	ar := newTestRunner(t, a, hostproctest.New("raw_exec"))
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	if got.ClientStatus != structs.AllocClientStatusComplete {
		t.Fatalf("client status %s, events %v", got.ClientStatus, eventTypes(got.TaskStates["web"]))
	}
}

func TestAllocRunnerUnknownDriverFailsWithoutRestart(t *testing.T) {
	task := shTask("web", `true`)
	task.Driver = "nope"
	a := testAlloc(structs.JobTypeService, &structs.RestartPolicy{Attempts: 5, Interval: time.Minute, Delay: 10 * time.Millisecond, Mode: "fail"}, task)
	ar := newTestRunner(t, a, hostproctest.New("raw_exec"))
	ar.Run()
	got := waitDone(t, ar, 20*time.Second)
	st := got.TaskStates["web"]
	if got.ClientStatus != structs.AllocClientStatusFailed || st.Restarts != 0 {
		t.Fatalf("status %s restarts %d, want failed without restarts; events %v", got.ClientStatus, st.Restarts, eventTypes(st))
	}
}
