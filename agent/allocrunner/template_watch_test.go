package allocrunner

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/internal/hostproctest"
	"github.com/berth-dev/berth/agent/state"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

// templateTask is a raw_exec task running script, with templates.
func templateTask(script string, tmpls ...*structs.Template) *structs.Task {
	task := shTask("web", script)
	task.Templates = tmpls
	return task
}

// fileTemplate renders local/in.txt (through the file function) into dest.
func fileTemplate(dest, mode string) *structs.Template {
	return &structs.Template{EmbeddedTmpl: `{{ file "local/in.txt" }}`, DestPath: dest, ChangeMode: mode, Perms: "0640"}
}

type templateRun struct {
	t   *testing.T
	ar  *AllocRunner
	d   *hostproctest.Driver
	drv driver.Driver // what the runner uses: d, or a wrapper of it
	id  string        // the driver's task ID
	dir string        // the task dir
}

// startTemplateTask writes local/in.txt, runs task with a fast template
// poll and waits until its script wrote "up" to $NOMAD_ALLOC_DIR/starts.
func startTemplateTask(t *testing.T, task *structs.Task, input string) *templateRun {
	t.Helper()
	r := newTemplateRun(t, task, input)
	r.start()
	return r
}

// newTemplateRun prepares the run (task dir and input) without starting it.
func newTemplateRun(t *testing.T, task *structs.Task, input string, wrap ...func(*hostproctest.Driver) driver.Driver) *templateRun {
	t.Helper()
	a := testAlloc(structs.JobTypeService, nil, task)
	r := &templateRun{t: t, d: hostproctest.New("raw_exec"), id: a.ID + "/" + task.Name}
	r.drv = r.d
	for _, wrap := range wrap {
		r.drv = wrap(r.d)
	}
	r.ar = r.newRunner(a, t.TempDir())
	// only the last runner is live: the ones shut down (agent restarts)
	// left their tasks to it
	t.Cleanup(func() { _ = r.ar.Destroy(10 * time.Second) })
	r.dir = r.ar.AllocDir().TaskDir(task.Name).Dir
	if err := os.MkdirAll(filepath.Join(r.dir, "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.writeInput(input)
	return r
}

func (r *templateRun) start() {
	r.t.Helper()
	r.ar.Run()
	r.waitStarts(1)
}

// writeInput replaces local/in.txt atomically, as config tools do.
func (r *templateRun) writeInput(content string) {
	r.t.Helper()
	tmp := filepath.Join(r.dir, "local", ".in.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, "local", "in.txt")); err != nil {
		r.t.Fatal(err)
	}
}

func (r *templateRun) shared(name string) string {
	data, _ := os.ReadFile(filepath.Join(r.ar.AllocDir().SharedDir, name))
	return string(data)
}

func (r *templateRun) lines(name string) int {
	return strings.Count(r.shared(name), "\n")
}

func (r *templateRun) file(rel string) string {
	data, _ := os.ReadFile(filepath.Join(r.dir, rel))
	return string(data)
}

func (r *templateRun) waitStarts(n int) {
	r.t.Helper()
	waitFor(r.t, 10*time.Second, "task script started", func() bool {
		st := r.ar.Alloc().TaskStates["web"]
		return r.lines("starts") == n && st != nil && st.State == TaskStateRunning
	})
}

func (r *templateRun) state() *structs.TaskState { return r.ar.Alloc().TaskStates["web"] }

func eventsOf(st *structs.TaskState, typ string) []*structs.TaskEvent {
	var out []*structs.TaskEvent
	for _, e := range st.Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// settle gives the watcher several polls to do something it must not.
func settle() { time.Sleep(200 * time.Millisecond) }

const upScript = `echo up >> "$NOMAD_ALLOC_DIR/starts"; exec sleep 30`

func TestTemplateNoopRewritesWithoutActing(t *testing.T) {
	r := startTemplateTask(t, templateTask(upScript, fileTemplate("local/out.conf", structs.TemplateChangeModeNoop)), "v1")
	if got := r.file("local/out.conf"); got != "v1" {
		t.Fatalf("first render %q", got)
	}
	r.writeInput("v2")
	waitFor(t, 10*time.Second, "re-render", func() bool { return r.file("local/out.conf") == "v2" })
	fi, err := os.Stat(filepath.Join(r.dir, "local", "out.conf"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("re-rendered file mode %v (%v), want 0640 as the first render", fi.Mode(), err)
	}
	settle()
	if n := r.d.Starts(r.id); n != 1 {
		t.Fatalf("noop template restarted the task: %d starts", n)
	}
	st := r.state()
	if len(eventsOf(st, EventRestartSignal)) != 0 || len(eventsOf(st, EventSignaling)) != 0 {
		t.Fatalf("noop template acted: events %v", eventTypes(st))
	}
}

func TestTemplateSignalCoalescedAndDelivered(t *testing.T) {
	script := `trap 'echo hup >> "$NOMAD_ALLOC_DIR/hups"' HUP
trap 'echo usr1 >> "$NOMAD_ALLOC_DIR/usr1s"' USR1
echo up >> "$NOMAD_ALLOC_DIR/starts"
i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`
	a, b, c := fileTemplate("local/a", structs.TemplateChangeModeSignal), fileTemplate("local/b", structs.TemplateChangeModeSignal), fileTemplate("local/c", structs.TemplateChangeModeSignal)
	a.ChangeSignal, b.ChangeSignal, c.ChangeSignal = "SIGHUP", "SIGHUP", "SIGUSR1"
	r := startTemplateTask(t, templateTask(script, a, b, c), "v1")
	r.writeInput("v2")
	waitFor(t, 10*time.Second, "SIGHUP and SIGUSR1 trapped", func() bool { return r.lines("hups") >= 1 && r.lines("usr1s") >= 1 })
	settle()
	if h, u := r.lines("hups"), r.lines("usr1s"); h != 1 || u != 1 {
		t.Fatalf("got %d SIGHUP and %d SIGUSR1, want each distinct signal once", h, u)
	}
	for _, f := range []string{"local/a", "local/b", "local/c"} {
		if got := r.file(f); got != "v2" {
			t.Fatalf("%s = %q, want v2", f, got)
		}
	}
	evs := eventsOf(r.state(), EventSignaling)
	if len(evs) != 2 {
		t.Fatalf("%d Signaling events, want 2: %v", len(evs), eventTypes(r.state()))
	}
	for _, e := range evs {
		if e.DisplayMessage != "Template re-rendered" {
			t.Fatalf("Signaling event message %q", e.DisplayMessage)
		}
	}
	if n := r.d.Starts(r.id); n != 1 {
		t.Fatalf("signal template restarted the task: %d starts", n)
	}
}

func TestTemplateRestartWinsAndWatchesNextAttempt(t *testing.T) {
	restart := fileTemplate("local/r", structs.TemplateChangeModeRestart)
	sig := fileTemplate("local/s", structs.TemplateChangeModeSignal)
	sig.ChangeSignal = "SIGUSR1" // would kill the sh task if it were sent
	r := startTemplateTask(t, templateTask(upScript, restart, sig), "v1")
	tr := r.ar.tasks["web"]
	r.writeInput("v2")
	r.waitStarts(2)
	st := r.state()
	rs := eventsOf(st, EventRestartSignal)
	if len(rs) != 1 || rs[0].DisplayMessage != "Template with change_mode restart re-rendered" {
		t.Fatalf("Restart Signaled events %+v; all %v", rs, eventTypes(st))
	}
	if len(eventsOf(st, EventSignaling)) != 0 {
		t.Fatalf("signal sent although a restart won: %v", eventTypes(st))
	}
	if st.Restarts != 1 || st.Failed {
		t.Fatalf("restarts %d failed %v, want 1, false", st.Restarts, st.Failed)
	}
	// the new attempt has its own watcher, which acts on the next change
	waitFor(t, 10*time.Second, "watcher of the second attempt", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.watcher != nil
	})
	r.writeInput("v3")
	r.waitStarts(3)
	if got := r.file("local/r"); got != "v3" {
		t.Fatalf("local/r = %q after the second restart", got)
	}
}

func TestTemplateEnvvarsChangeRestartsWithNewEnv(t *testing.T) {
	env := &structs.Template{EmbeddedTmpl: `GREETING={{ file "local/in.txt" }}`, DestPath: "secrets/env", ChangeMode: structs.TemplateChangeModeRestart, Envvars: true}
	script := `echo "$GREETING" >> "$NOMAD_ALLOC_DIR/greetings"; ` + upScript
	r := startTemplateTask(t, templateTask(script, env), "hello")
	r.writeInput("bonjour")
	r.waitStarts(2)
	if got := r.shared("greetings"); got != "hello\nbonjour\n" {
		t.Fatalf("env of the attempts %q, want the re-rendered value after the restart", got)
	}
}

func TestTemplateScriptRuns(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	tmpl := fileTemplate("local/out", structs.TemplateChangeModeScript)
	tmpl.ChangeScript = &structs.ChangeScript{Command: "/bin/sh", Args: []string{"-c", `cat "$0" >> "$1"`, "", marker}, Timeout: 5 * time.Second}
	r := newTemplateRun(t, templateTask(upScript, tmpl), "v1")
	// the script reads the rendered file: it runs after the write
	tmpl.ChangeScript.Args[2] = filepath.Join(r.dir, "local", "out")
	r.start()
	r.writeInput("v2")
	waitFor(t, 10*time.Second, "change script ran", func() bool {
		data, _ := os.ReadFile(marker)
		return string(data) == "v2"
	})
	waitFor(t, 10*time.Second, "script event", func() bool { return len(eventsOf(r.state(), eventTaskHookMessage)) == 1 })
	if n := r.d.Starts(r.id); n != 1 || r.state().State != TaskStateRunning {
		t.Fatalf("script template: %d starts, state %s", n, r.state().State)
	}
}

func TestTemplateScriptFailure(t *testing.T) {
	failing := func(failOnError bool) *structs.Template {
		tmpl := fileTemplate("local/out", structs.TemplateChangeModeScript)
		tmpl.ChangeScript = &structs.ChangeScript{Command: "/bin/sh", Args: []string{"-c", "exit 3"}, FailOnError: failOnError}
		return tmpl
	}
	t.Run("recorded", func(t *testing.T) {
		r := startTemplateTask(t, templateTask(upScript, failing(false)), "v1")
		r.writeInput("v2")
		waitFor(t, 10*time.Second, "hook failed event", func() bool { return len(eventsOf(r.state(), EventTaskHookFailed)) == 1 })
		e := eventsOf(r.state(), EventTaskHookFailed)[0]
		if !strings.Contains(e.DisplayMessage, "exited with code: 3") || e.FailsTask {
			t.Fatalf("event %+v", e)
		}
		settle()
		if st := r.state(); st.State != TaskStateRunning || r.d.Starts(r.id) != 1 {
			t.Fatalf("without fail_on_error the task must keep running: %s, events %v", st.State, eventTypes(st))
		}
	})
	t.Run("fail_on_error kills", func(t *testing.T) {
		r := startTemplateTask(t, templateTask(upScript, failing(true)), "v1")
		r.writeInput("v2")
		got := waitDone(t, r.ar, 15*time.Second)
		st := got.TaskStates["web"]
		if st.State != TaskStateDead || !st.Failed {
			t.Fatalf("task %s failed=%v, want dead and failed", st.State, st.Failed)
		}
		evs := eventsOf(st, EventTaskHookFailed)
		if len(evs) != 1 || !evs[0].FailsTask || !strings.Contains(evs[0].DisplayMessage, "task is being killed") {
			t.Fatalf("hook failed events %+v; all %v", evs, eventTypes(st))
		}
		if len(eventsOf(st, EventKilling)) != 1 {
			t.Fatalf("no Killing event: %v", eventTypes(st))
		}
		if got.ClientStatus != structs.AllocClientStatusFailed {
			t.Fatalf("alloc %s, want failed", got.ClientStatus)
		}
	})
}

// A splay delays the action; stopping the task meanwhile ends the watcher
// at once, without acting.
func TestTemplateSplayInterruptedByStop(t *testing.T) {
	tmpl := fileTemplate("local/out", structs.TemplateChangeModeSignal)
	tmpl.ChangeSignal, tmpl.Splay = "SIGUSR1", time.Hour
	r := startTemplateTask(t, templateTask(upScript, tmpl), "v1")
	r.writeInput("v2")
	waitFor(t, 10*time.Second, "re-render", func() bool { return r.file("local/out") == "v2" })
	start := time.Now()
	r.ar.Kill()
	got := waitDone(t, r.ar, 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stop took %s while a splay was pending", took)
	}
	if st := got.TaskStates["web"]; len(eventsOf(st, EventSignaling)) != 0 || st.Failed {
		t.Fatalf("acted after the stop: %v", eventTypes(st))
	}
}

func TestSplayDelayBounds(t *testing.T) {
	if d := splayDelay(0); d != 0 {
		t.Fatalf("no splay: %s", d)
	}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := splayDelay(10 * time.Millisecond)
		if d < 0 || d >= 10*time.Millisecond {
			t.Fatalf("splay %s outside [0, 10ms)", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatal("splay is not random")
	}
}

// The watcher goroutine of an attempt ends when the task stops.
func TestTemplateWatcherEndsWithTask(t *testing.T) {
	r := startTemplateTask(t, templateTask(upScript, fileTemplate("local/out", structs.TemplateChangeModeNoop)), "v1")
	tr := r.ar.tasks["web"]
	tr.mu.Lock()
	w := tr.watcher
	tr.mu.Unlock()
	if w == nil {
		t.Fatal("no template watcher while the task runs")
	}
	if !watcherGoroutineRunning() {
		t.Fatal("watcher goroutine not found in the stacks")
	}
	r.ar.Kill()
	waitDone(t, r.ar, 10*time.Second)
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher still running after the task stopped")
	}
	tr.mu.Lock()
	left := tr.watcher
	tr.mu.Unlock()
	if left != nil {
		t.Fatal("task runner still holds a watcher")
	}
	waitFor(t, 10*time.Second, "watcher goroutine gone", func() bool { return !watcherGoroutineRunning() })
}

// A task whose templates read no file has no watcher goroutine at all.
func TestTemplateWithoutFilesNotWatched(t *testing.T) {
	tmpl := &structs.Template{EmbeddedTmpl: `{{ env "NOMAD_TASK_NAME" }}`, DestPath: "local/out"}
	r := startTemplateTask(t, templateTask(upScript, tmpl), "v1")
	tr := r.ar.tasks["web"]
	tr.mu.Lock()
	w := tr.watcher
	tr.mu.Unlock()
	if w != nil {
		t.Fatal("watcher started for a template nothing can change")
	}
}

func watcherGoroutineRunning() bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Contains(string(buf[:n]), "(*templateWatcher).run")
}

// Re-rendering never acts on a task that is no longer running.
func TestTemplateSignalNotRunning(t *testing.T) {
	r := startTemplateTask(t, templateTask(upScript, fileTemplate("local/out", structs.TemplateChangeModeNoop)), "v1")
	r.ar.Kill()
	waitDone(t, r.ar, 10*time.Second)
	w := &templateWatcher{tr: r.ar.tasks["web"], done: make(chan struct{})}
	if killed := w.signal(context.Background(), []string{"SIGHUP"}); killed {
		t.Fatal("signal of a dead task killed it")
	}
	if len(eventsOf(r.state(), EventSignaling)) != 0 {
		t.Fatal("signaled a dead task")
	}
}

// A task recovered after an agent restart (no prestart ran) is watched
// too: a template whose file changed while no agent watched is re-rendered
// at recovery and its change_mode applied (Nomad's behaviour since 1.0),
// and later changes are acted on as before.
func TestTemplateWatchedAfterRecovery(t *testing.T) {
	tmpl := fileTemplate("local/out", structs.TemplateChangeModeRestart)
	unchanged := &structs.Template{EmbeddedTmpl: `{{ file "local/other" }}`, DestPath: "local/other.out", ChangeMode: structs.TemplateChangeModeRestart}
	r := newTemplateRun(t, templateTask(upScript, tmpl, unchanged), "v1")
	if err := os.WriteFile(filepath.Join(r.dir, "local", "other"), []byte("same"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start()
	handles := r.ar.Handles()
	if handles["web"] == nil {
		t.Fatal("no handle for the running task")
	}
	st := r.state()
	r.ar.Shutdown() // the agent stops; the task keeps running

	ar2 := r.recoveredRunner(handles, st)
	tr := r.ar.tasks["web"]
	ar2.Run()
	waitFor(t, 10*time.Second, "recovered task watched", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.watcher != nil
	})
	settle()
	if n := r.d.Starts(r.id); n != 1 {
		t.Fatalf("recovery restarted a task whose templates did not change: %d starts", n)
	}
	r.writeInput("v2")
	waitFor(t, 10*time.Second, "restart after the change", func() bool {
		s := ar2.Alloc().TaskStates["web"]
		return r.d.Starts(r.id) == 2 && s.State == TaskStateRunning && len(eventsOf(s, EventRestartSignal)) == 1
	})
	if got := r.file("local/out"); got != "v2" {
		t.Fatalf("local/out = %q, want v2", got)
	}

	// changed while the agent is away: acted on at recovery
	handles, st = ar2.Handles(), ar2.Alloc().TaskStates["web"]
	ar2.Shutdown()
	r.writeInput("v3")
	ar3 := r.recoveredRunner(handles, st)
	ar3.Run()
	waitFor(t, 10*time.Second, "restart at recovery", func() bool {
		s := ar3.Alloc().TaskStates["web"]
		return r.d.Starts(r.id) == 3 && s.State == TaskStateRunning
	})
	if got := r.file("local/out"); got != "v3" {
		t.Fatalf("local/out = %q, want v3", got)
	}
}

// newRunner builds an alloc runner on r's driver with a fast template
// poll.
func (r *templateRun) newRunner(a *structs.Allocation, root string) *AllocRunner {
	r.t.Helper()
	ar, err := New(Config{
		Alloc: a, Region: "global", AllocRoot: root,
		Drivers: func(string) (driver.Driver, error) { return r.drv, nil },
		State:   &memStore{},
		Logger:  slog.New(slog.NewTextHandler(testWriter{r.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, tr := range ar.tasks {
		tr.templatePoll = 20 * time.Millisecond
	}
	return ar
}

// recoveredRunner replaces r's runner (shut down) by a new one for the
// same allocation, as an agent restarted with the tasks still running
// builds.
func (r *templateRun) recoveredRunner(handles map[string]*driver.TaskHandle, st *structs.TaskState) *AllocRunner {
	r.t.Helper()
	ar := r.newRunner(r.ar.alloc(), filepath.Dir(r.ar.AllocDir().Dir))
	ar.Restore(map[string]*state.Task{"web": {Driver: "raw_exec", Handle: handles["web"], State: st}})
	r.ar = ar
	return ar
}

// signalFailingDriver cannot deliver signals.
type signalFailingDriver struct{ *hostproctest.Driver }

var errNoSignals = errors.New("signals not delivered")

func (signalFailingDriver) SignalTask(context.Context, string, string) error { return errNoSignals }

// A change signal that cannot be delivered kills and fails the task (its
// config changed under it), as in Nomad.
func TestTemplateSignalFailureKillsTask(t *testing.T) {
	tmpl := fileTemplate("local/out", structs.TemplateChangeModeSignal)
	tmpl.ChangeSignal = "SIGHUP"
	r := newTemplateRun(t, templateTask(upScript, tmpl), "v1", func(d *hostproctest.Driver) driver.Driver {
		return signalFailingDriver{d}
	})
	r.start()
	r.writeInput("v2")
	got := waitDone(t, r.ar, 15*time.Second)
	st := got.TaskStates["web"]
	evs := eventsOf(st, EventTaskHookFailed)
	if !st.Failed || len(evs) != 1 || !evs[0].FailsTask || !strings.Contains(evs[0].DisplayMessage, "failed to send signals [SIGHUP]") {
		t.Fatalf("failed=%v hook events %+v; all %v", st.Failed, evs, eventTypes(st))
	}
}

// A re-render that fails is reported once and leaves the task running on
// its last good render; fixing the file re-renders.
func TestTemplateRerenderFailureReportedOnce(t *testing.T) {
	tmpl := &structs.Template{SourcePath: "local/in.txt", DestPath: "local/out", ChangeMode: structs.TemplateChangeModeNoop}
	r := startTemplateTask(t, templateTask(upScript, tmpl), "good")
	r.writeInput("{{ broken")
	waitFor(t, 10*time.Second, "render failure event", func() bool { return len(eventsOf(r.state(), EventTaskHookFailed)) > 0 })
	settle()
	st := r.state()
	if n := len(eventsOf(st, EventTaskHookFailed)); n != 1 || st.State != TaskStateRunning {
		t.Fatalf("%d failure events, state %s; want one, running", n, st.State)
	}
	if got := r.file("local/out"); got != "good" {
		t.Fatalf("last good render replaced by %q", got)
	}
	r.writeInput("fixed")
	waitFor(t, 10*time.Second, "re-render after the fix", func() bool { return r.file("local/out") == "fixed" })
}
