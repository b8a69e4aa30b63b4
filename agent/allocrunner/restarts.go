package allocrunner

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

// restartDecision is what the restart tracker says after a task ended or
// failed to start.
type restartDecision struct {
	// Restart: start the task again after Delay.
	Restart bool
	Delay   time.Duration
	// Failed: the task is dead and failed (restarts exhausted in fail
	// mode, or an unrecoverable error); otherwise a non-restart is a
	// successful completion.
	Failed bool
	// Reason is the event message (Nomad's wording).
	Reason string
}

// Nomad's restart event messages.
const (
	reasonWithinPolicy = "Restart within policy"
	reasonDelay        = "Exceeded allowed attempts, applying a delay"
	reasonUnrecover    = "Error was unrecoverable"
	reasonBatchDone    = "Restart unnecessary as task terminated successfully"
)

// restartTracker applies a restart block with Nomad's semantics: at most
// Attempts restarts in each Interval window (the window starts at the first
// restart after the previous window ended), each after Delay plus up to 25%
// jitter; once exceeded, mode "fail" fails the task and mode "delay" waits
// for the window to end and starts counting again. A batch task that exits
// successfully is complete, never restarted.
type restartTracker struct {
	policy  structs.RestartPolicy
	batch   bool
	now     func() time.Time
	jitter  func(max time.Duration) time.Duration
	count   int
	started time.Time // start of the current interval window
}

func newRestartTracker(p *structs.RestartPolicy, jobType string, now func() time.Time) *restartTracker {
	if p == nil {
		p = structs.DefaultRestartPolicy(jobType)
	}
	return &restartTracker{
		policy: *p,
		batch:  jobType == structs.JobTypeBatch || jobType == structs.JobTypeSysBatch,
		now:    now,
		jitter: func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		},
	}
}

// onExit decides after the task exited with res.
func (r *restartTracker) onExit(res *driver.ExitResult) restartDecision {
	if res != nil && res.Successful() && r.batch {
		return restartDecision{Reason: reasonBatchDone}
	}
	return r.next()
}

// onStartError decides after the task failed to start; unrecoverable
// errors (invalid config, unknown driver) are never retried.
func (r *restartTracker) onStartError(recoverable bool) restartDecision {
	if !recoverable {
		return restartDecision{Failed: true, Reason: reasonUnrecover}
	}
	return r.next()
}

func (r *restartTracker) next() restartDecision {
	now := r.now()
	if r.started.IsZero() || now.Sub(r.started) > r.policy.Interval {
		r.started = now
		r.count = 0
	}
	r.count++
	if r.count <= r.policy.Attempts {
		return restartDecision{Restart: true, Delay: r.policy.Delay + r.jitter(r.policy.Delay/4), Reason: reasonWithinPolicy}
	}
	if r.policy.Mode == structs.RestartPolicyModeDelay {
		// wait out the window, then begin a fresh one
		wait := r.policy.Interval - now.Sub(r.started)
		if wait < r.policy.Delay {
			wait = r.policy.Delay
		}
		r.started = time.Time{}
		return restartDecision{Restart: true, Delay: wait, Reason: reasonDelay}
	}
	return restartDecision{Failed: true, Reason: fmt.Sprintf("Exceeded allowed attempts %d in interval %v and mode is %q",
		r.policy.Attempts, r.policy.Interval, r.policy.Mode)}
}
