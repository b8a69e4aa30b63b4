package allocrunner

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time        { return c.t }
func (c *fakeClock) add(d time.Duration)   { c.t = c.t.Add(d) }
func noJitter(time.Duration) time.Duration { return 0 }

func tracker(p structs.RestartPolicy, jobType string, c *fakeClock) *restartTracker {
	r := newRestartTracker(&p, jobType, c.now)
	r.jitter = noJitter
	return r
}

func TestRestartFailModeExhaustsAttempts(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	r := tracker(structs.RestartPolicy{Attempts: 2, Interval: time.Minute, Delay: time.Second, Mode: structs.RestartPolicyModeFail}, structs.JobTypeService, c)
	fail := &driver.ExitResult{ExitCode: 1}
	for i := 0; i < 2; i++ {
		d := r.onExit(fail)
		if !d.Restart || d.Delay != time.Second {
			t.Fatalf("attempt %d: %+v, want restart after 1s", i+1, d)
		}
		c.add(time.Second)
	}
	if d := r.onExit(fail); d.Restart || !d.Failed {
		t.Fatalf("third failure: %+v, want failed", d)
	}
}

func TestRestartIntervalResetsCount(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	r := tracker(structs.RestartPolicy{Attempts: 1, Interval: 10 * time.Second, Delay: time.Second, Mode: structs.RestartPolicyModeFail}, structs.JobTypeService, c)
	fail := &driver.ExitResult{ExitCode: 1}
	if d := r.onExit(fail); !d.Restart {
		t.Fatalf("first: %+v", d)
	}
	c.add(11 * time.Second) // the window ended: count starts again
	if d := r.onExit(fail); !d.Restart {
		t.Fatalf("after the interval: %+v, want restart", d)
	}
	c.add(time.Second)
	if d := r.onExit(fail); !d.Failed {
		t.Fatalf("second in window: %+v, want failed", d)
	}
}

func TestRestartDelayModeWaitsForInterval(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	r := tracker(structs.RestartPolicy{Attempts: 1, Interval: 30 * time.Second, Delay: time.Second, Mode: structs.RestartPolicyModeDelay}, structs.JobTypeService, c)
	fail := &driver.ExitResult{ExitCode: 1}
	r.onExit(fail)
	c.add(5 * time.Second)
	d := r.onExit(fail)
	if !d.Restart || d.Failed || d.Delay != 25*time.Second || d.Reason != reasonDelay {
		t.Fatalf("exceeded in delay mode: %+v, want restart after the 25s left of the interval", d)
	}
	c.add(d.Delay)
	if d := r.onExit(fail); !d.Restart || d.Delay != time.Second {
		t.Fatalf("after the delay a new window starts: %+v", d)
	}
}

func TestRestartBatchSuccessCompletes(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := structs.RestartPolicy{Attempts: 3, Interval: time.Hour, Delay: time.Second, Mode: structs.RestartPolicyModeFail}
	if d := tracker(p, structs.JobTypeBatch, c).onExit(&driver.ExitResult{}); d.Restart || d.Failed {
		t.Fatalf("batch success: %+v, want complete", d)
	}
	// a service task that exits 0 is restarted, as in Nomad
	if d := tracker(p, structs.JobTypeService, c).onExit(&driver.ExitResult{}); !d.Restart {
		t.Fatalf("service success: %+v, want restart", d)
	}
	if d := tracker(p, structs.JobTypeBatch, c).onStartError(false); d.Restart || !d.Failed {
		t.Fatalf("unrecoverable start error: %+v, want failed", d)
	}
}

func TestRestartZeroAttemptsFailsAtOnce(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	r := tracker(structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Delay: time.Second, Mode: structs.RestartPolicyModeFail}, structs.JobTypeBatch, c)
	if d := r.onExit(&driver.ExitResult{ExitCode: 2}); d.Restart || !d.Failed {
		t.Fatalf("%+v, want failed", d)
	}
}

func TestRestartJitterBounded(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := structs.RestartPolicy{Attempts: 100, Interval: time.Hour, Delay: 4 * time.Second, Mode: structs.RestartPolicyModeFail}
	r := newRestartTracker(&p, structs.JobTypeService, c.now)
	for i := 0; i < 50; i++ {
		d := r.onExit(&driver.ExitResult{ExitCode: 1})
		if d.Delay < 4*time.Second || d.Delay >= 5*time.Second {
			t.Fatalf("delay %s outside [4s, 5s)", d.Delay)
		}
	}
}

func fakeNow() time.Time { return time.Unix(1000, 0) }
