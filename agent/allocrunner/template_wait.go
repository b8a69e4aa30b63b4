package allocrunner

import (
	"bytes"
	"os"
	"time"

	"github.com/berth-dev/berth/agent/template"
	"github.com/berth-dev/berth/structs"
)

// A template's wait block (min, max) makes the watcher wait for its output
// to settle before writing it, as consul-template's quiescence timers do
// for Nomad: a change is written once the output has not changed for min,
// but never later than max after the first change seen, so a source that
// keeps changing is still written (and its change_mode applied) every max.
// Without a wait block, or with a zero min, a change is written at the
// poll that sees it. The first render, before the task starts, does not
// wait: consul-template applies wait only after its initial render.

// waitMaxFactor gives max when only min is set: consul-template assumes a
// max of 4× min when none is given.
const waitMaxFactor = 4

// templateWait returns t's effective quiescence bounds; ok is false when t
// has no wait (no block, or no positive min).
func templateWait(t *structs.Template) (minWait, maxWait time.Duration, ok bool) {
	if t.Wait == nil || t.Wait.Min == nil || *t.Wait.Min <= 0 {
		return 0, 0, false
	}
	minWait = *t.Wait.Min
	maxWait = waitMaxFactor * minWait
	if t.Wait.Max != nil && *t.Wait.Max > 0 {
		maxWait = max(*t.Wait.Max, minWait)
	}
	return minWait, maxWait, true
}

// pendingChange is a changed output being waited out.
type pendingChange struct {
	out       []byte    // the output of the last render
	firstSeen time.Time // when the output first differed from the file
	lastSeen  time.Time // when the output last changed
	due       time.Time // when it is written if nothing changes meanwhile
}

// pollWaiting is poll's step for a template with a wait block: it renders
// without writing, tracks how long the new output has been stable and
// writes it when it is due. wrote says the file changed.
func (w *templateWatcher) pollWaiting(wt *watchedTemplate, minWait, maxWait time.Duration, now time.Time) (wrote bool) {
	// a pending change is re-rendered at every poll: its files may change
	// again within the racy window, where their stamps prove nothing
	if wt.pending == nil && !wt.force && !wt.deps.Changed() {
		return false
	}
	wt.force = false
	out, deps, err := template.ExecuteTracked(wt.tmpl, w.taskDir, w.env)
	wt.deps = deps
	if err != nil {
		w.renderFailed(wt, err) // a pending change stays pending
		return false
	}
	wt.lastErr = ""
	if w.matchesDisk(wt.tmpl, out) {
		wt.pending = nil // unchanged, or changed back while waiting
		return false
	}
	switch p := wt.pending; {
	case p == nil:
		wt.pending = &pendingChange{out: out, firstSeen: now, lastSeen: now}
	case !bytes.Equal(p.out, out):
		p.out, p.lastSeen = out, now // changed again: min starts over
	}
	p := wt.pending
	p.due = p.lastSeen.Add(minWait)
	if capAt := p.firstSeen.Add(maxWait); capAt.Before(p.due) {
		p.due = capAt
	}
	if now.Before(p.due) {
		return false
	}
	wt.pending = nil
	// the render writes the output of now, the latest one
	wrote, deps, err = template.RenderTracked(wt.tmpl, w.taskDir, w.env)
	wt.deps = deps
	if err != nil {
		w.renderFailed(wt, err)
		return false
	}
	return wrote
}

// matchesDisk reports whether t's destination already holds out.
func (w *templateWatcher) matchesDisk(t *structs.Template, out []byte) bool {
	dest, err := template.Destination(t, w.taskDir, w.env)
	if err != nil {
		return false // the write reports it
	}
	cur, err := os.ReadFile(dest)
	return err == nil && bytes.Equal(cur, out)
}

// nextDue is the earliest time a pending change is due; ok is false when
// none is pending.
func (w *templateWatcher) nextDue() (due time.Time, ok bool) {
	for _, wt := range w.watched {
		if wt.pending == nil {
			continue
		}
		if !ok || wt.pending.due.Before(due) {
			due, ok = wt.pending.due, true
		}
	}
	return due, ok
}
