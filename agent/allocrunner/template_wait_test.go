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

// A single change is written (and signalled) once it has been stable for
// min, not at the poll that saw it.
func TestTemplateWaitWritesAfterMin(t *testing.T) {
	r := startTemplateTask(t, templateTask(hupScript, waitTemplate()), "v1")
	changedAt := time.Now()
	r.writeInput("v2")
	// several 20 ms polls see the change; none may write it yet
	time.Sleep(testWaitMin / 2)
	if got := r.file("local/out"); got != "v1" {
		t.Fatalf("written %q %s after the change, before min %s", got, time.Since(changedAt), testWaitMin)
	}
	waitFor(t, 5*time.Second, "write after min", func() bool { return r.file("local/out") == "v2" })
	if took := time.Since(changedAt); took < testWaitMin {
		t.Fatalf("written %s after the change, before min %s", took, testWaitMin)
	} else if took > testWaitMin+time.Second {
		t.Fatalf("written %s after the change, long after min %s", took, testWaitMin)
	}
	waitFor(t, 5*time.Second, "SIGHUP after the write", func() bool { return r.lines("hups") == 1 })
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
	hupsAtWrite := -1
	last := ""
	// 100 ms apart (< min) for 3 s (> max)
	for i := 0; time.Since(firstChange) < testWaitMax+time.Second; i++ {
		last = fmt.Sprintf("v%d", i+2)
		r.writeInput(last)
		for step := 0; step < 10; step++ {
			time.Sleep(10 * time.Millisecond)
			if writtenAfter == 0 && r.file("local/out") != "v1" {
				writtenAfter = time.Since(firstChange)
			}
			if writtenAfter > 0 && hupsAtWrite < 0 && r.lines("hups") > 0 && time.Since(firstChange) < testWaitMax+500*time.Millisecond {
				hupsAtWrite = r.lines("hups")
			}
		}
		if i > 100 {
			t.Fatal("change loop did not end")
		}
	}
	if writtenAfter == 0 {
		t.Fatalf("nothing written within %s of changes every 100ms (max %s)", time.Since(firstChange), testWaitMax)
	}
	if writtenAfter < testWaitMax || writtenAfter > testWaitMax+700*time.Millisecond {
		t.Fatalf("first write %s after the first change, want at max %s", writtenAfter, testWaitMax)
	}
	if hupsAtWrite != 1 {
		t.Fatalf("%d SIGHUPs by the write at max, want 1", hupsAtWrite)
	}
	// the changes after the write at max settle and are written again
	waitFor(t, 5*time.Second, "last change written and signalled", func() bool {
		return r.file("local/out") == last && r.lines("hups") == 2
	})
	settle()
	if n := r.lines("hups"); n != 2 {
		t.Fatalf("%d SIGHUPs, want 2 (one at max, one once settled)", n)
	}
	if n := r.d.Starts(r.id); n != 1 {
		t.Fatalf("signal template restarted the task: %d starts", n)
	}
}

// A change reverted before min passed is not written nor acted on.
func TestTemplateWaitChangeRevertedNotActed(t *testing.T) {
	r := startTemplateTask(t, templateTask(hupScript, waitTemplate()), "v1")
	r.writeInput("v2")
	time.Sleep(testWaitMin / 3)
	r.writeInput("v1")
	time.Sleep(2 * testWaitMin)
	if got, n := r.file("local/out"), r.lines("hups"); got != "v1" || n != 0 {
		t.Fatalf("reverted change: file %q, %d SIGHUPs; want v1 and none", got, n)
	}
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
