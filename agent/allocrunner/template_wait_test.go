package allocrunner

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

// hupScript counts SIGHUPs in $NOMAD_ALLOC_DIR/hups (sleeping in short
// steps so that the trap runs at once).
const hupScript = `trap 'echo hup >> "$NOMAD_ALLOC_DIR/hups"' HUP
echo up >> "$NOMAD_ALLOC_DIR/starts"
i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`

const (
	testWaitMin = 300 * time.Millisecond
	testWaitMax = 2 * time.Second
)

// waitTemplate is a SIGHUP template on local/in.txt with wait {min, max}.
func waitTemplate() *structs.Template {
	tmpl := fileTemplate("local/out", structs.TemplateChangeModeSignal)
	tmpl.ChangeSignal = "SIGHUP"
	minWait, maxWait := testWaitMin, testWaitMax
	tmpl.Wait = &structs.WaitConfig{Min: &minWait, Max: &maxWait}
	return tmpl
}

// These tests run the wait rules end to end on the wall clock; only
// bounds a loaded machine cannot break are asserted here (nothing is
// written before min, or before max while changes keep coming), the exact
// instants are checked with a synthetic clock in template_quiescence_test.go.

// A single change is written (and signalled once) after it has been stable
// for min, not at the poll that saw it.
func TestTemplateWaitWritesAfterMin(t *testing.T) {
	r := startTemplateTask(t, templateTask(hupScript, waitTemplate()), "v1")
	changedAt := time.Now()
	r.writeInput("v2")
	// several 20 ms polls see the change; none may write it yet
	time.Sleep(testWaitMin / 2)
	if got, took := r.file("local/out"), time.Since(changedAt); got != "v1" && took < testWaitMin {
		t.Fatalf("written %q %s after the change, before min %s", got, took, testWaitMin)
	}
	waitFor(t, 10*time.Second, "write after min", func() bool { return r.file("local/out") == "v2" })
	if took := time.Since(changedAt); took < testWaitMin {
		t.Fatalf("written %s after the change, before min %s", took, testWaitMin)
	}
	waitFor(t, 10*time.Second, "SIGHUP after the write", func() bool { return r.lines("hups") == 1 })
	settle()
	if n := r.lines("hups"); n != 1 {
		t.Fatalf("%d SIGHUPs for one change, want 1", n)
	}
}

// A source changing faster than min is still written by max after the
// first change, with change_mode applied once; the changes after that
// write are waited out and written again.
func TestTemplateWaitBoundedByMax(t *testing.T) {
	r := startTemplateTask(t, templateTask(hupScript, waitTemplate()), "v1")
	firstChange := time.Now()
	var writtenAfter time.Duration // when the file first left v1
	var maxGap time.Duration       // the longest the source stayed unchanged
	last, lastWrite := "", firstChange
	// A change every 100 ms (< min) until the write at max and its SIGHUP
	// were seen; a second cap (2×max) must not come before the loop ends.
	hardStop := 2*testWaitMax - 300*time.Millisecond
	for i := 0; writtenAfter == 0 || r.lines("hups") == 0; i++ {
		if time.Since(firstChange) > hardStop {
			t.Fatalf("after %s of changes every 100ms (max %s): written after %s, %d SIGHUPs",
				time.Since(firstChange), testWaitMax, writtenAfter, r.lines("hups"))
		}
		last = fmt.Sprintf("v%d", i+2)
		maxGap = max(maxGap, time.Since(lastWrite))
		r.writeInput(last)
		lastWrite = time.Now()
		for range 10 {
			time.Sleep(10 * time.Millisecond)
			if writtenAfter == 0 && r.file("local/out") != "v1" {
				writtenAfter = time.Since(firstChange)
			}
		}
	}
	// a source that stalled for min (a loaded machine) may rightly be
	// written before max: the bound holds only when it never did
	if maxGap < testWaitMin-50*time.Millisecond && writtenAfter < testWaitMax {
		t.Fatalf("first write %s after the first change, before max %s (changes at most %s apart)", writtenAfter, testWaitMax, maxGap)
	}
	if n := r.lines("hups"); n != 1 {
		t.Fatalf("%d SIGHUPs by the write at max, want 1", n)
	}
	// a change after the write at max is waited out and written again
	last = "vfinal"
	r.writeInput(last)
	waitFor(t, 10*time.Second, "last change written", func() bool { return r.file("local/out") == last })
	waitFor(t, 10*time.Second, "its SIGHUP", func() bool { return r.lines("hups") >= 2 })
	settle()
	if n := r.lines("hups"); n != 2 {
		t.Fatalf("%d SIGHUPs, want 2 (one at max, one once settled)", n)
	}
	if n := r.d.Starts(r.id); n != 1 {
		t.Fatalf("signal template restarted the task: %d starts", n)
	}
}

// A change reverted before min passed is not written nor acted on. The
// revert must come before min: a machine too loaded to revert in time gets
// another try, with a fresh task.
func TestTemplateWaitChangeRevertedNotActed(t *testing.T) {
	const attempts = 3
	for attempt := 1; attempt <= attempts; attempt++ {
		r := startTemplateTask(t, templateTask(hupScript, waitTemplate()), "v1")
		r.writeInput("v2")
		changedAt := time.Now()
		time.Sleep(testWaitMin / 3)
		r.writeInput("v1")
		if gap := time.Since(changedAt); gap >= testWaitMin-50*time.Millisecond {
			t.Logf("attempt %d: reverted %s after the change, too close to min %s", attempt, gap, testWaitMin)
			continue
		}
		time.Sleep(2 * testWaitMin)
		if got, n := r.file("local/out"), r.lines("hups"); got != "v1" || n != 0 {
			t.Fatalf("reverted change: file %q, %d SIGHUPs; want v1 and none", got, n)
		}
		return
	}
	t.Fatalf("no revert within min in %d attempts", attempts)
}

func TestTemplateWaitBounds(t *testing.T) {
	d := func(v time.Duration) *time.Duration { return &v }
	cases := []struct {
		name     string
		wait     *structs.WaitConfig
		min, max time.Duration
		ok       bool
	}{
		{"no block", nil, 0, 0, false},
		{"empty block", &structs.WaitConfig{}, 0, 0, false},
		{"max only", &structs.WaitConfig{Max: d(time.Second)}, 0, 0, false},
		{"zero min", &structs.WaitConfig{Min: d(0), Max: d(time.Second)}, 0, 0, false},
		{"min only: max is 4x min", &structs.WaitConfig{Min: d(5 * time.Second)}, 5 * time.Second, 20 * time.Second, true},
		{"both", &structs.WaitConfig{Min: d(time.Second), Max: d(3 * time.Second)}, time.Second, 3 * time.Second, true},
		{"zero max: 4x min", &structs.WaitConfig{Min: d(time.Second), Max: d(0)}, time.Second, 4 * time.Second, true},
	}
	for _, c := range cases {
		minWait, maxWait, ok := templateWait(&structs.Template{Wait: c.wait})
		if minWait != c.min || maxWait != c.max || ok != c.ok {
			t.Errorf("%s: got (%s, %s, %v), want (%s, %s, %v)", c.name, minWait, maxWait, ok, c.min, c.max, c.ok)
		}
	}
}
