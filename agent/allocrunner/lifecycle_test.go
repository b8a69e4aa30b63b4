package allocrunner

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth/structs"
)

func TestLifecycleOrdering(t *testing.T) {
	views := []taskView{
		{name: "init", hook: structs.TaskLifecycleHookPrestart, state: TaskStatePending},
		{name: "side", hook: structs.TaskLifecycleHookPrestart, sidecar: true, state: TaskStatePending},
		{name: "main", state: TaskStatePending},
		{name: "post", hook: structs.TaskLifecycleHookPoststart, state: TaskStatePending},
		{name: "stop", hook: structs.TaskLifecycleHookPoststop, state: TaskStatePending},
	}
	var l lifecycle
	set := func(name, state string, started bool) {
		for i := range views {
			if views[i].name == name {
				views[i].state, views[i].started = state, started
			}
		}
	}
	act := l.decide(views, false)
	if !slices.Equal(act.allow, []string{"init", "side"}) || act.done {
		t.Fatalf("first: allow %v, want the prestart tasks only", act.allow)
	}
	set("side", TaskStateRunning, true)
	if act = l.decide(views, false); slices.Contains(act.allow, "main") {
		t.Fatalf("main allowed before the non-sidecar prestart task completed: %v", act.allow)
	}
	set("init", TaskStateDead, true)
	act = l.decide(views, false)
	if !slices.Contains(act.allow, "main") || slices.Contains(act.allow, "post") {
		t.Fatalf("after prestart: allow %v, want main but not poststart", act.allow)
	}
	set("main", TaskStateRunning, true)
	if act = l.decide(views, false); !slices.Contains(act.allow, "post") || slices.Contains(act.allow, "stop") {
		t.Fatalf("after main started: allow %v, want poststart, not poststop", act.allow)
	}
	set("post", TaskStateRunning, true)
	set("main", TaskStateDead, true)
	act = l.decide(views, false)
	slices.Sort(act.kill)
	if !slices.Equal(act.kill, []string{"post", "side"}) {
		t.Fatalf("main done: kill %v, want the sidecar and poststart", act.kill)
	}
	set("post", TaskStateDead, true)
	set("side", TaskStateDead, true)
	if act = l.decide(views, false); !slices.Contains(act.allow, "stop") || act.done {
		t.Fatalf("all but poststop dead: allow %v done %v, want poststop allowed", act.allow, act.done)
	}
	set("stop", TaskStateDead, true)
	if act = l.decide(views, false); !act.done {
		t.Fatal("all dead but not done")
	}
}

func TestLifecycleFailureAndLeaderKillOthers(t *testing.T) {
	views := []taskView{
		{name: "a", state: TaskStateDead, failed: true, started: true},
		{name: "b", state: TaskStateRunning, started: true},
	}
	var l lifecycle
	act := l.decide(views, false)
	if !slices.Equal(act.kill, []string{"b"}) || act.reason == nil {
		t.Fatalf("failed sibling: kill %v, want b with a reason", act.kill)
	}
	if ev := act.reason(fakeNow()); ev.Type != EventSiblingFailed {
		t.Fatalf("reason %s, want %s", ev.Type, EventSiblingFailed)
	}
	if act = l.decide(views, false); len(act.kill) != 0 {
		t.Fatalf("killed twice: %v", act.kill)
	}

	views = []taskView{
		{name: "leader", leader: true, state: TaskStateDead, started: true},
		{name: "b", state: TaskStateRunning, started: true},
	}
	l = lifecycle{}
	act = l.decide(views, false)
	if !slices.Equal(act.kill, []string{"b"}) || act.reason(fakeNow()).Type != EventLeaderDead {
		t.Fatalf("leader dead: kill %v", act.kill)
	}

	views = []taskView{{name: "a", state: TaskStateRunning, started: true}, {name: "s", hook: structs.TaskLifecycleHookPoststop, state: TaskStatePending}}
	l = lifecycle{}
	act = l.decide(views, true)
	if !slices.Equal(act.kill, []string{"a"}) || slices.Contains(act.allow, "s") {
		t.Fatalf("stop: kill %v allow %v, want a killed and poststop waiting", act.kill, act.allow)
	}
}
