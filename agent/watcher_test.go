package agent

import (
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// The watcher fetches allocations whole only when the stubs show work for
// reconcile; the agent's own status updates (ModifyIndex, ClientStatus)
// must not trigger a fetch.
func TestStubsChanged(t *testing.T) {
	run, stop := structs.AllocDesiredStatusRun, structs.AllocDesiredStatusStop
	a := &Agent{runners: map[string]*runner{
		"a": {modifyIndex: 10, desiredStatus: run},
		"b": {modifyIndex: 12, desiredStatus: run},
	}}
	known := []api.ClientAllocStub{
		{ID: "a", AllocModifyIndex: 10, ModifyIndex: 40, DesiredStatus: run, ClientStatus: structs.AllocClientStatusRunning},
		{ID: "b", AllocModifyIndex: 12, ModifyIndex: 41, DesiredStatus: run, ClientStatus: structs.AllocClientStatusComplete},
	}
	with := func(extra ...api.ClientAllocStub) []api.ClientAllocStub {
		return append(append([]api.ClientAllocStub(nil), known...), extra...)
	}
	for _, tc := range []struct {
		name  string
		stubs []api.ClientAllocStub
		want  bool
	}{
		{"only client-side updates", known, false},
		{"a terminal allocation never run here", with(api.ClientAllocStub{ID: "c", DesiredStatus: stop}), false},
		{"a new allocation", with(api.ClientAllocStub{ID: "c", AllocModifyIndex: 50, DesiredStatus: run, ClientStatus: structs.AllocClientStatusPending}), true},
		{"a server-side change", []api.ClientAllocStub{known[0], {ID: "b", AllocModifyIndex: 13, DesiredStatus: run}}, true},
		{"a stop", []api.ClientAllocStub{known[0], {ID: "b", AllocModifyIndex: 12, DesiredStatus: stop}}, true},
		{"a garbage-collected allocation", known[:1], true},
	} {
		if got := a.stubsChanged(tc.stubs); got != tc.want {
			t.Errorf("%s: changed = %v, want %v", tc.name, got, tc.want)
		}
	}
}
