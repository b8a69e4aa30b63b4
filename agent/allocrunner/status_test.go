package allocrunner

import (
	"testing"

	"github.com/berth-dev/berth/structs"
)

func TestClientStatus(t *testing.T) {
	st := func(s string, failed bool) *structs.TaskState { return &structs.TaskState{State: s, Failed: failed} }
	cases := []struct {
		name   string
		states map[string]*structs.TaskState
		want   string
	}{
		{"all pending", map[string]*structs.TaskState{"a": st("pending", false), "b": st("pending", false)}, structs.AllocClientStatusPending},
		{"one running", map[string]*structs.TaskState{"a": st("running", false), "b": st("pending", false)}, structs.AllocClientStatusRunning},
		{"running and done", map[string]*structs.TaskState{"a": st("running", false), "b": st("dead", false)}, structs.AllocClientStatusRunning},
		{"all done", map[string]*structs.TaskState{"a": st("dead", false), "b": st("dead", false)}, structs.AllocClientStatusComplete},
		{"one failed while others run", map[string]*structs.TaskState{"a": st("dead", true), "b": st("running", false)}, structs.AllocClientStatusFailed},
		{"done and pending poststop", map[string]*structs.TaskState{"a": st("dead", false), "b": st("pending", false)}, structs.AllocClientStatusPending},
	}
	for _, c := range cases {
		if got, _ := clientStatus(c.states); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
