package allocrunner

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/agent/template"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

// defaultTemplatePoll is how often a running task's template dependencies
// are stat'ed: consul-template (which Nomad renders with) polls file
// dependencies every 2 s, so operators see changes land as quickly as in
// Nomad; a stat per file every 2 s costs nothing measurable.
const defaultTemplatePoll = 2 * time.Second

// defaultScriptTimeout is Nomad's change_script timeout when none is set.
const defaultScriptTimeout = 5 * time.Second

// eventTaskHookMessage is Nomad's event for a hook's informational message
// (a change script that ran fine).
const eventTaskHookMessage = "Task hook message"

// templateWatcher re-renders a running attempt's templates when a file they
// read changes, writes the new output when it differs from the file on
// disk, and applies the templates' change_mode, as Nomad does:
//   - noop: only the write;
//   - restart: the task restarts through the user-restart path (not
//     counted against the restart policy), and a restart wins over
//     everything else that changed with it;
//   - signal: each distinct change_signal is sent once;
//   - script: each change_script runs inside the task (driver exec);
//     a failure with fail_on_error kills the task, failing it.
//
// A template with a wait block is written only once its output settled
// (template_wait.go). Before acting it waits a random delay in [0, splay) (the largest splay
// of the templates that changed). Templates with env = true follow their
// change_mode too: as Nomad documents, the task's environment only changes
// when change_mode restarts it (the prestart render rebuilds it).
//
// A watcher lives for one attempt: waitLoop starts it once the task runs
// and stops it, waiting for its goroutine, before it stops, restarts or
// leaves the attempt, so it never renders while a prestart render runs.
type templateWatcher struct {
	tr      *taskRunner
	every   time.Duration
	taskDir string
	env     *taskenv.Env
	watched []*watchedTemplate
	done    chan struct{} // closed when its goroutine returned
}

type watchedTemplate struct {
	tmpl *structs.Template
	deps template.Deps
	// force renders at the next poll whatever deps say: what it reads is
	// not known yet (a recovered task)
	force   bool
	lastErr string         // the last render error reported (to report each once)
	pending *pendingChange // a change waited out (wait block); nil when none
}

// watchTemplates starts the template watcher of the attempt now running;
// stop ends it and waits for its goroutine. Without templates to watch no
// goroutine is started.
func (tr *taskRunner) watchTemplates(ctx context.Context) (stop func()) {
	w := tr.newTemplateWatcher()
	if w == nil {
		return func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	tr.mu.Lock()
	tr.watcher = w
	tr.mu.Unlock()
	go w.run(wctx)
	return func() {
		cancel()
		<-w.done
		tr.mu.Lock()
		if tr.watcher == w {
			tr.watcher = nil
		}
		tr.mu.Unlock()
	}
}

// newTemplateWatcher prepares a watcher from the last prestart's renders;
// nil when no template can change. A task recovered after an agent
// restart had no prestart: its templates are rendered at once, with the
// env rebuilt from its env templates' files, and one whose file changed
// while no agent watched gets its change_mode applied (as Nomad does on
// a client restart since 1.0).
func (tr *taskRunner) newTemplateWatcher() *templateWatcher {
	task := tr.currentTask()
	tr.mu.Lock()
	rendered, every := tr.rendered, tr.templatePoll
	tr.mu.Unlock()
	if every <= 0 {
		every = defaultTemplatePoll
	}
	w := &templateWatcher{tr: tr, every: every, done: make(chan struct{})}
	if rendered != nil {
		w.taskDir, w.env = rendered.taskDir, rendered.env
	} else {
		w.taskDir = tr.ar.allocDir.TaskDir(tr.name).Dir
	}
	tmpls := task.Templates
	if rendered != nil {
		// what that prestart rendered, even if the job changed in place
		tmpls = rendered.tmpls
	}
	for _, t := range tmpls {
		if t == nil || t.Once {
			continue // once: rendered at the first start only, never re-rendered
		}
		if rendered == nil {
			w.watched = append(w.watched, &watchedTemplate{tmpl: t, force: true})
			continue
		}
		deps := rendered.deps[t]
		if deps.Empty() {
			continue // it reads no file: nothing can change it
		}
		w.watched = append(w.watched, &watchedTemplate{tmpl: t, deps: deps})
	}
	if len(w.watched) == 0 {
		return nil
	}
	if rendered == nil {
		w.env = tr.recoveredTemplateEnv(task)
	}
	return w
}

// recoveredTemplateEnv rebuilds the env a recovered task was started with,
// its env templates read back from their files.
func (tr *taskRunner) recoveredTemplateEnv(task *structs.Task) *taskenv.Env {
	tr.mu.Lock()
	env := tr.env
	tr.mu.Unlock()
	if env != nil {
		return env
	}
	tr.setEnv(nil)
	tr.mu.Lock()
	env = tr.env
	tr.mu.Unlock()
	extra, err := loadTemplateEnv(task.Templates, tr.ar.allocDir.TaskDir(tr.name).Dir, env)
	if err != nil {
		tr.logger.Warn("read env templates of recovered task", "error", err)
		return env
	}
	if len(extra) > 0 {
		tr.setEnv(extra)
		tr.mu.Lock()
		env = tr.env
		tr.mu.Unlock()
	}
	return env
}

func (w *templateWatcher) run(ctx context.Context) {
	defer close(w.done)
	if w.watched[0].force {
		// recovered: render now, not a poll interval later
		if done := w.poll(ctx); done {
			return
		}
	}
	t := time.NewTicker(w.every)
	defer t.Stop()
	// wakes the loop when a waited-out change is due between two polls
	dueTimer := time.NewTimer(time.Hour)
	dueTimer.Stop()
	defer dueTimer.Stop()
	for {
		var dueC <-chan time.Time
		if due, ok := w.nextDue(); ok {
			dueTimer.Reset(time.Until(due))
			dueC = dueTimer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-dueC:
		}
		dueTimer.Stop()
		if done := w.poll(ctx); done {
			return
		}
	}
}

// poll re-renders the templates whose files changed (a template with a
// wait block writes only once its output settled, template_wait.go) and
// applies their change modes; done says the attempt is ending (restart or
// kill asked).
func (w *templateWatcher) poll(ctx context.Context) (done bool) {
	var changed []*structs.Template
	now := time.Now()
	for _, wt := range w.watched {
		if ctx.Err() != nil {
			return true
		}
		if w.rerender(wt, now) {
			w.tr.logger.Info("template re-rendered", "destination", wt.tmpl.DestPath, "change_mode", wt.tmpl.ChangeMode)
			if mode := wt.tmpl.ChangeMode; wt.tmpl.Envvars && mode != "" && mode != structs.TemplateChangeModeRestart {
				w.tr.logger.Info("env template changed; the task's environment changes at its next start",
					"destination", wt.tmpl.DestPath)
			}
			changed = append(changed, wt.tmpl)
		}
	}
	if len(changed) == 0 {
		return false
	}
	return w.apply(ctx, changed)
}

// rerender renders wt when a file it read changed and writes the output
// (at once, or when due with a wait block); wrote says the file changed.
func (w *templateWatcher) rerender(wt *watchedTemplate, now time.Time) (wrote bool) {
	if minWait, maxWait, ok := templateWait(wt.tmpl); ok {
		return w.pollWaiting(wt, minWait, maxWait, now)
	}
	if !wt.force && !wt.deps.Changed() {
		return false
	}
	wt.force = false
	wrote, deps, err := template.RenderTracked(wt.tmpl, w.taskDir, w.env)
	wt.deps = deps
	if err != nil {
		w.renderFailed(wt, err)
		return false
	}
	wt.lastErr = ""
	return wrote
}

// renderFailed reports a failed re-render once per distinct error. The
// task keeps running on the last good render (a file being replaced may
// be briefly missing); the render is retried when a file it read changes.
func (w *templateWatcher) renderFailed(wt *watchedTemplate, err error) {
	if msg := err.Error(); msg != wt.lastErr {
		wt.lastErr = msg
		w.tr.logger.Warn("template re-render failed", "destination", wt.tmpl.DestPath, "error", err)
		w.tr.emit(event(EventTaskHookFailed, w.tr.ar.now()).
			msg(fmt.Sprintf("Template failed to re-render %q: %v", wt.tmpl.DestPath, err)).build())
	}
}

// apply coalesces what the changed templates ask for, waits out the splay
// and acts. done says the task is restarting or being killed.
func (w *templateWatcher) apply(ctx context.Context, changed []*structs.Template) (done bool) {
	restart := false
	signals := map[string]bool{}
	var scripts []*structs.ChangeScript
	var splay time.Duration
	for _, t := range changed {
		switch t.ChangeMode {
		case structs.TemplateChangeModeNoop:
			continue
		case structs.TemplateChangeModeSignal:
			sig := t.ChangeSignal
			if sig == "" {
				sig = "SIGHUP"
			}
			signals[sig] = true
		case structs.TemplateChangeModeScript:
			if t.ChangeScript != nil && t.ChangeScript.Command != "" {
				scripts = append(scripts, t.ChangeScript)
			}
		default: // restart, and the default when unset
			restart = true
		}
		splay = max(splay, t.Splay)
	}
	if !restart && len(signals) == 0 && len(scripts) == 0 {
		return false
	}
	if !sleepCtx(ctx, splayDelay(splay)) {
		return true
	}
	if restart {
		return w.restart()
	}
	if len(signals) > 0 && w.signal(ctx, slices.Sorted(maps.Keys(signals))) {
		return true
	}
	return w.runScripts(ctx, scripts)
}

// restart asks for a restart through the user-restart path, with Nomad's
// event.
func (w *templateWatcher) restart() bool {
	tr := w.tr
	tr.mu.Lock()
	tr.restartEv = event(EventRestartSignal, tr.ar.now()).msg("Template with change_mode restart re-rendered").build()
	tr.mu.Unlock()
	if err := tr.requestRestart(); err != nil {
		tr.logger.Warn("restart for a re-rendered template", "error", err)
		tr.mu.Lock()
		tr.restartEv = nil
		tr.mu.Unlock()
	}
	return true
}

// signal sends each signal once through the driver; a signal that cannot
// be sent kills the task (its config is stale), as in Nomad.
func (w *templateWatcher) signal(ctx context.Context, signals []string) (killed bool) {
	tr := w.tr
	_, d, id, err := tr.ar.running(tr.name)
	if err != nil {
		return ctx.Err() != nil // not running any more: the attempt is ending
	}
	var failed []string
	var lastErr error
	for _, sig := range signals {
		tr.emit(event(EventSignaling, tr.ar.now()).msg("Template re-rendered").detail("signal", sig).build())
		if err := d.SignalTask(ctx, id, sig); err != nil {
			if ctx.Err() != nil {
				return true
			}
			failed, lastErr = append(failed, sig), err
		}
	}
	if len(failed) == 0 {
		return false
	}
	tr.logger.Warn("template change signal failed", "signals", failed, "error", lastErr)
	tr.kill(event(EventTaskHookFailed, tr.ar.now()).
		msg(fmt.Sprintf("Template failed to send signals %v: %v", failed, lastErr)).failsTask().build())
	return true
}

// runScripts runs the change scripts inside the task, concurrently (as
// Nomad does), each bounded by its timeout.
func (w *templateWatcher) runScripts(ctx context.Context, scripts []*structs.ChangeScript) (killed bool) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, s := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w.runScript(ctx, s) {
				mu.Lock()
				killed = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return killed || ctx.Err() != nil
}

// runScript runs one change script through the exec path of alloc exec
// and reports how it went; killed when it failed with fail_on_error.
func (w *templateWatcher) runScript(ctx context.Context, s *structs.ChangeScript) (killed bool) {
	tr := w.tr
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = defaultScriptTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, err := tr.ar.Exec(sctx, tr.name, &driver.ExecOptions{
		Command: append([]string{s.Command}, s.Args...),
		Stdout:  io.Discard, Stderr: io.Discard,
	})
	if ctx.Err() != nil {
		return false // the attempt is ending: not the script's failure
	}
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("Template failed to run script %v with arguments %v on change: %v", s.Command, s.Args, err)
	case sctx.Err() != nil:
		msg = fmt.Sprintf("Template script %v with arguments %v timed out after %s", s.Command, s.Args, timeout)
	case code != 0:
		msg = fmt.Sprintf("Template ran script %v with arguments %v on change but it exited with code: %d", s.Command, s.Args, code)
	default:
		tr.emit(event(eventTaskHookMessage, tr.ar.now()).
			msg(fmt.Sprintf("Template successfully ran script %v with arguments: %v. Exit code: %d", s.Command, s.Args, code)).build())
		return false
	}
	tr.logger.Warn("template change script failed", "command", s.Command, "message", msg)
	if !s.FailOnError {
		tr.emit(event(EventTaskHookFailed, tr.ar.now()).msg(msg).build())
		return false
	}
	// the kill sequence shows this reason before Killing
	tr.kill(event(EventTaskHookFailed, tr.ar.now()).
		msg(msg + "; template script failed, task is being killed (fail_on_error)").failsTask().build())
	return true
}

// splayDelay is a random delay in [0, splay).
func splayDelay(splay time.Duration) time.Duration {
	if splay <= 0 {
		return 0
	}
	return rand.N(splay)
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
