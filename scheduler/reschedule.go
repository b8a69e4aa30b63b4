package scheduler

import (
	"time"

	"github.com/berth-dev/berth/structs"
)

// maxRescheduleChain bounds how far back the history of replaced
// allocations is walked.
const maxRescheduleChain = 64

// reschedulePolicy is the group's reschedule block, falling back to the
// job's and to the job type's default.
func reschedulePolicy(job *structs.Job, tg *structs.TaskGroup) *structs.ReschedulePolicy {
	if tg.ReschedulePolicy != nil {
		return tg.ReschedulePolicy
	}
	if job.Reschedule != nil {
		return job.Reschedule
	}
	return structs.DefaultReschedulePolicy(job.Type)
}

type rescheduleDecision int

const (
	rescheduleNever rescheduleDecision = iota
	rescheduleNow
	rescheduleLater
)

// rescheduleHistory walks the chain of allocations this one replaced and
// returns the times each replacement was made (newest first) and the nodes
// the chain ran on.
func rescheduleHistory(state State, a *structs.Allocation) (events []int64, nodes []string) {
	nodes = append(nodes, a.NodeID)
	cur := a
	for range maxRescheduleChain {
		if cur.PreviousAllocation == "" {
			break
		}
		prev, err := state.AllocByID(cur.PreviousAllocation)
		if err != nil || prev == nil {
			break
		}
		if prev.ClientStatus == structs.AllocClientStatusFailed {
			events = append(events, cur.CreateTime)
		}
		if !contains(nodes, prev.NodeID) {
			nodes = append(nodes, prev.NodeID)
		}
		cur = prev
	}
	return events, nodes
}

// failTime is when the allocation failed: its last task's finish, else its
// last modification.
func failTime(a *structs.Allocation, now time.Time) time.Time {
	var t time.Time
	for _, ts := range a.TaskStates {
		if ts != nil && ts.FinishedAt.After(t) {
			t = ts.FinishedAt
		}
	}
	if t.IsZero() && a.ModifyTime > 0 {
		t = time.Unix(0, a.ModifyTime)
	}
	if t.IsZero() {
		t = now
	}
	return t
}

// rescheduleDelay is the delay before the attempt after n earlier ones.
func rescheduleDelay(p *structs.ReschedulePolicy, n int) time.Duration {
	d := p.Delay
	switch p.DelayFunction {
	case structs.DelayFunctionExponential:
		for i := 0; i < n && (p.MaxDelay == 0 || d < p.MaxDelay); i++ {
			d *= 2
		}
	case structs.DelayFunctionFibonacci:
		a, b := p.Delay, p.Delay
		for i := 1; i < n && (p.MaxDelay == 0 || b < p.MaxDelay); i++ {
			a, b = b, a+b
		}
		if n > 0 {
			d = b
		}
	}
	if p.MaxDelay > 0 && d > p.MaxDelay && p.DelayFunction != structs.DelayFunctionConstant {
		d = p.MaxDelay
	}
	return d
}

// decideReschedule says whether a failed allocation is replaced now, later
// (and when), or never, and the nodes it ran on (to avoid).
//
// A reschedule forced by `PUT /v1/job/:id/evaluate` (EvalOptions.
// ForceReschedule, which sets DesiredTransition.ForceReschedule) is now,
// whatever the policy's delay, attempts or enablement, as in Nomad.
func decideReschedule(state State, job *structs.Job, tg *structs.TaskGroup, a *structs.Allocation, now time.Time) (rescheduleDecision, time.Time, []string) {
	if a.DesiredTransition.ShouldForceReschedule() {
		_, nodes := rescheduleHistory(state, a)
		return rescheduleNow, now, nodes
	}
	p := reschedulePolicy(job, tg)
	if !p.Enabled() {
		return rescheduleNever, time.Time{}, nil
	}
	events, nodes := rescheduleHistory(state, a)
	if !p.Unlimited {
		since := now.Add(-p.Interval).UnixNano()
		recent := 0
		for _, e := range events {
			if e >= since {
				recent++
			}
		}
		if recent >= p.Attempts {
			return rescheduleNever, time.Time{}, nodes
		}
	}
	at := failTime(a, now).Add(rescheduleDelay(p, len(events)))
	if !now.Before(at) {
		return rescheduleNow, at, nodes
	}
	return rescheduleLater, at, nodes
}
