package allocrunner

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/structs"
)

// taskView is what the lifecycle rules look at of one task.
type taskView struct {
	name    string
	hook    string // "", prestart, poststart, poststop
	sidecar bool
	leader  bool
	state   string
	failed  bool
	started bool // ran at least once
}

// lifecycleActions are what the coordinator does next.
type lifecycleActions struct {
	allow []string
	kill  []string
	// reason is shown on killed tasks (nil: none, a plain stop)
	reason func(now time.Time) *structs.TaskEvent
	done   bool
}

// lifecycle holds the coordinator's memory between decisions.
type lifecycle struct {
	killing bool
	reason  func(now time.Time) *structs.TaskEvent
	killed  map[string]bool
}

// decide applies Nomad's task lifecycle to the current task views:
//   - prestart tasks start first; main tasks start once every non-sidecar
//     prestart task completed successfully and every sidecar one runs;
//   - poststart tasks start once every main task has started;
//   - when every main task is dead, or a leader task dies, or a task fails,
//     or a stop was requested, every other non-poststop task is killed;
//   - poststop tasks start once every other task is dead.
func (l *lifecycle) decide(views []taskView, stopRequested bool) lifecycleActions {
	var act lifecycleActions
	var mains, pre, post, poststop []taskView
	for _, v := range views {
		switch v.hook {
		case structs.TaskLifecycleHookPrestart:
			pre = append(pre, v)
		case structs.TaskLifecycleHookPoststart:
			post = append(post, v)
		case structs.TaskLifecycleHookPoststop:
			poststop = append(poststop, v)
		default:
			mains = append(mains, v)
		}
	}
	dead := func(v taskView) bool { return v.state == TaskStateDead }
	all := func(vs []taskView, f func(taskView) bool) bool {
		for _, v := range vs {
			if !f(v) {
				return false
			}
		}
		return true
	}
	if !l.killing {
		for _, v := range views {
			if dead(v) && v.failed && v.hook != structs.TaskLifecycleHookPoststop {
				name := v.name
				l.killing = true
				l.reason = func(now time.Time) *structs.TaskEvent {
					return event(EventSiblingFailed, now).msg(fmt.Sprintf("Task's sibling %q failed", name)).
						detail("failed_sibling", name).build()
				}
				break
			}
		}
	}
	if !l.killing {
		for _, v := range mains {
			if v.leader && dead(v) {
				l.killing = true
				l.reason = func(now time.Time) *structs.TaskEvent {
					return event(EventLeaderDead, now).msg("Leader Task in Group dead").build()
				}
			}
		}
	}
	if !l.killing && (stopRequested || (len(mains) > 0 && all(mains, dead))) {
		l.killing = true
	}
	if l.killed == nil {
		l.killed = map[string]bool{}
	}
	if l.killing {
		act.reason = l.reason
		for _, v := range views {
			if v.hook != structs.TaskLifecycleHookPoststop && !dead(v) && !l.killed[v.name] {
				l.killed[v.name] = true
				act.kill = append(act.kill, v.name)
			}
		}
	} else {
		for _, v := range pre {
			act.allow = append(act.allow, v.name)
		}
		preReady := all(pre, func(v taskView) bool {
			if v.sidecar {
				return v.state == TaskStateRunning || v.started
			}
			return dead(v) && !v.failed
		})
		if preReady {
			for _, v := range mains {
				act.allow = append(act.allow, v.name)
			}
			if all(mains, func(v taskView) bool { return v.started }) {
				for _, v := range post {
					act.allow = append(act.allow, v.name)
				}
			}
		}
	}
	var others []taskView
	others = append(append(append(others, pre...), mains...), post...)
	if all(others, dead) {
		for _, v := range poststop {
			act.allow = append(act.allow, v.name)
		}
	}
	act.done = all(views, dead)
	return act
}

// coordinate runs the lifecycle until every task is dead or the agent
// shuts down.
func (ar *AllocRunner) coordinate() {
	var l lifecycle
	stopRequested := false
	killCh := ar.killCh
	select {
	case <-killCh:
		// killed before the first decision (e.g. while the network was
		// being prepared): no task may start
		stopRequested, killCh = true, nil
	default:
	}
	for {
		views := ar.views()
		act := l.decide(views, stopRequested)
		for _, name := range act.allow {
			ar.tasks[name].allowStart()
		}
		for _, name := range act.kill {
			var ev *structs.TaskEvent
			if act.reason != nil {
				ev = act.reason(ar.now())
			}
			ar.tasks[name].kill(ev)
		}
		if act.done {
			// tasks are reported dead before their containers are removed
			// (finish): wait for the removals, which are bounded, before
			// the network goes
			for _, name := range ar.order {
				<-ar.tasks[name].doneCh
			}
			ar.teardownNetwork(ar.ctx)
			close(ar.doneCh)
			ar.cfg.OnChange(ar.ID())
			return
		}
		select {
		case <-ar.changeCh:
		case <-killCh:
			stopRequested = true
			killCh = nil // closed: stop selecting on it
		case <-ar.ctx.Done():
			return
		}
	}
}

func (ar *AllocRunner) views() []taskView {
	out := make([]taskView, 0, len(ar.order))
	for _, name := range ar.order {
		tr := ar.tasks[name]
		t := tr.currentTask()
		st := tr.snapshot()
		v := taskView{name: name, leader: t.Leader, state: st.State, failed: st.Failed, started: !st.StartedAt.IsZero()}
		if t.Lifecycle != nil {
			v.hook, v.sidecar = t.Lifecycle.Hook, t.Lifecycle.Sidecar
		}
		out = append(out, v)
	}
	return out
}
