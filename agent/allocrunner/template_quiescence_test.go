package allocrunner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/agent/template"
	"github.com/berth-dev/berth/structs"
)

// quiescence drives pollWaiting with a synthetic clock, so the wait
// block's rules (write once stable for min, never later than max after
// the first change, forget a change reverted in time) are checked at exact
// instants whatever the machine's load; the tests in template_wait_test.go
// check the same rules end to end, on the wall clock.
type quiescence struct {
	t   *testing.T
	dir string
	w   *templateWatcher
	wt  *watchedTemplate
	t0  time.Time
}

const (
	quiescenceMin = time.Second
	quiescenceMax = 4 * time.Second
)

func newQuiescence(t *testing.T) *quiescence {
	t.Helper()
	q := &quiescence{t: t, dir: t.TempDir(), t0: time.Unix(1_800_000_000, 0)}
	if err := os.MkdirAll(filepath.Join(q.dir, "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	q.input("v1")
	env := taskenv.NewBuilder(nil, nil, &structs.Task{Name: "web"}, "").Build()
	tmpl := fileTemplate("local/out", structs.TemplateChangeModeNoop)
	_, deps, err := template.RenderTracked(tmpl, q.dir, env)
	if err != nil {
		t.Fatal(err)
	}
	q.wt = &watchedTemplate{tmpl: tmpl, deps: deps}
	q.w = &templateWatcher{taskDir: q.dir, env: env, watched: []*watchedTemplate{q.wt}}
	return q
}

func (q *quiescence) input(content string) {
	q.t.Helper()
	if err := os.WriteFile(filepath.Join(q.dir, "local", "in.txt"), []byte(content), 0o644); err != nil {
		q.t.Fatal(err)
	}
}

// pollAt polls at t0+at and checks whether it wrote and what the file holds.
func (q *quiescence) pollAt(at time.Duration, wantWrote bool, wantFile string) {
	q.t.Helper()
	wrote := q.w.pollWaiting(q.wt, quiescenceMin, quiescenceMax, q.t0.Add(at))
	data, _ := os.ReadFile(filepath.Join(q.dir, "local", "out"))
	if wrote != wantWrote || string(data) != wantFile {
		q.t.Fatalf("poll at +%s: wrote %v, file %q; want wrote %v, file %q", at, wrote, data, wantWrote, wantFile)
	}
}

func TestQuiescenceWritesOnceStableForMin(t *testing.T) {
	q := newQuiescence(t)
	q.input("v2")
	q.pollAt(0, false, "v1")
	q.pollAt(quiescenceMin-time.Millisecond, false, "v1")
	if due, ok := q.w.nextDue(); !ok || !due.Equal(q.t0.Add(quiescenceMin)) {
		t.Fatalf("nextDue = %s, %v; want t0+min", due.Sub(q.t0), ok)
	}
	q.pollAt(quiescenceMin, true, "v2")
	if _, ok := q.w.nextDue(); ok {
		t.Fatal("a change is still pending after its write")
	}
	q.pollAt(quiescenceMin+time.Second, false, "v2")
}

func TestQuiescenceChangeAgainRestartsMin(t *testing.T) {
	q := newQuiescence(t)
	q.input("v2")
	q.pollAt(0, false, "v1")
	q.input("v3")
	q.pollAt(600*time.Millisecond, false, "v1")
	q.pollAt(quiescenceMin, false, "v1") // stable for 400ms only
	q.pollAt(600*time.Millisecond+quiescenceMin, true, "v3")
}

func TestQuiescenceBoundedByMax(t *testing.T) {
	q := newQuiescence(t)
	// a change every 500ms (< min) never settles: max writes the latest
	var at time.Duration
	for i := 0; at < quiescenceMax; i++ {
		q.input("v" + string(rune('a'+i)))
		q.pollAt(at, false, "v1")
		at += 500 * time.Millisecond
	}
	q.input("vlast")
	q.pollAt(quiescenceMax, true, "vlast")
	// what changes after the write at max is waited out afresh
	q.input("vnext")
	q.pollAt(quiescenceMax+100*time.Millisecond, false, "vlast")
	q.pollAt(quiescenceMax+100*time.Millisecond+quiescenceMin-time.Millisecond, false, "vlast")
	q.pollAt(quiescenceMax+100*time.Millisecond+quiescenceMin, true, "vnext")
}

func TestQuiescenceRevertedChangeForgotten(t *testing.T) {
	q := newQuiescence(t)
	q.input("v2")
	q.pollAt(0, false, "v1")
	q.input("v1")
	q.pollAt(300*time.Millisecond, false, "v1")
	if _, ok := q.w.nextDue(); ok {
		t.Fatal("a change reverted before min is still pending")
	}
	q.pollAt(2*quiescenceMax, false, "v1")
}
