package structs_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/structs"
)

// fill sets every exported field reachable from v to a non-zero value
// derived from its name, so that a JSON round trip through another type
// shows any field that the other type names differently or lacks.
func fill(v reflect.Value, name string, depth int) {
	switch v.Kind() {
	case reflect.Pointer:
		if depth > 40 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name, depth+1)
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fill(v.Field(i), f.Name, depth+1)
		}
	case reflect.Slice:
		if depth > 40 {
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte("payload-" + name))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), name, depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		key := reflect.New(v.Type().Key()).Elem()
		key.SetString("key-" + name)
		val := reflect.New(v.Type().Elem()).Elem()
		if val.Kind() == reflect.Interface {
			val.Set(reflect.ValueOf("any-" + name))
		} else {
			fill(val, name, depth+1)
		}
		m.SetMapIndex(key, val)
		v.Set(m)
	case reflect.String:
		v.SetString("s-" + name)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(7 * time.Second))
		} else {
			v.SetInt(7)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(7.5)
	case reflect.Interface:
		v.Set(reflect.ValueOf("any-" + name))
	}
}

func roundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("marshal %T: %v", in, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("unmarshal into %T: %v", out, err)
	}
}

// Every field of a fully populated api.Job survives api -> berth -> api.
func TestJSONCompat_NomadJobSurvivesBerth(t *testing.T) {
	var orig api.Job
	fill(reflect.ValueOf(&orig).Elem(), "Job", 0)

	var mid structs.Job
	roundTrip(t, &orig, &mid)
	var back api.Job
	roundTrip(t, &mid, &back)

	// Fields berth accepts but does not model: Consul Connect is kept as an
	// opaque map (and so comes back whole), Nomad's token ID is not echoed,
	// and the deprecated LogConfig.Enabled is dropped.
	opts := cmp.Options{
		cmpopts.IgnoreFields(api.Job{}, "NomadTokenID"),
		cmpopts.IgnoreFields(api.LogConfig{}, "Enabled"),
		cmpopts.IgnoreFields(api.Service{}, "Connect"),
		cmpopts.IgnoreUnexported(api.Job{}),
	}
	if diff := cmp.Diff(&orig, &back, opts); diff != "" {
		t.Errorf("api -> berth -> api lost fields (-orig +back):\n%s", diff)
	}
}

// Every field of a fully populated berth Job survives berth -> api -> berth.
func TestJSONCompat_BerthJobSurvivesNomad(t *testing.T) {
	var orig structs.Job
	fill(reflect.ValueOf(&orig).Elem(), "Job", 0)

	var mid api.Job
	roundTrip(t, &orig, &mid)
	var back structs.Job
	roundTrip(t, &mid, &back)
	// Connect is opaque to berth; api fills in its own fields.
	if diff := cmp.Diff(&orig, &back, cmpopts.IgnoreFields(structs.Service{}, "Connect")); diff != "" {
		t.Errorf("berth -> api -> berth lost fields (-orig +back):\n%s", diff)
	}

	// Spot-check the names the brief calls out.
	tg, task := mid.TaskGroups[0], mid.TaskGroups[0].Tasks[0]
	if *mid.Priority != 7 || *tg.Count != 7 || *task.Resources.CPU != 7 || *task.Resources.MemoryMB != 7 {
		t.Errorf("scalars lost: priority %d count %d cpu %d mem %d", *mid.Priority, *tg.Count, *task.Resources.CPU, *task.Resources.MemoryMB)
	}
	if got := tg.Networks[0].ReservedPorts[0].Label; got != "s-Label" {
		t.Errorf("ReservedPorts label = %q", got)
	}
	if *tg.RestartPolicy.Interval != 7*time.Second || *task.KillTimeout != 7*time.Second {
		t.Errorf("durations lost: interval %v kill %v", *tg.RestartPolicy.Interval, *task.KillTimeout)
	}
}

func TestJSONCompat_NomadClientJob(t *testing.T) {
	j := api.NewServiceJob("web", "web", "global", 70)
	j.Datacenters = []string{"dc1"}
	j.Constrain(api.NewConstraint("${attr.kernel.name}", "=", "linux"))
	tg := api.NewTaskGroup("frontend", 3)
	tg.Networks = []*api.NetworkResource{{
		Mode:          "bridge",
		ReservedPorts: []api.Port{{Label: "http", Value: 8080, To: 80}},
		DynamicPorts:  []api.Port{{Label: "metrics", To: 9100}},
		DNS:           &api.DNSConfig{Servers: []string{"1.1.1.1"}},
	}}
	tg.Services = []*api.Service{{
		Name: "web", PortLabel: "http", Provider: "nomad", Tags: []string{"v1"},
		Checks: []api.ServiceCheck{{Type: "http", Path: "/health", Interval: 10 * time.Second, Timeout: 2 * time.Second}},
	}}
	task := api.NewTask("nginx", "containerd").
		SetConfig("image", "nginx:1.27").
		Require(&api.Resources{CPU: new(500), MemoryMB: new(256)})
	task.Env = map[string]string{"A": "b"}
	task.KillTimeout = new(20 * time.Second)
	tg.AddTask(task)
	j.AddTaskGroup(tg)

	var got structs.Job
	roundTrip(t, j, &got)
	want := &structs.Job{
		ID: "web", Name: "web", Region: "global", Type: "service", Priority: 70,
		Datacenters: []string{"dc1"},
		Constraints: []*structs.Constraint{{LTarget: "${attr.kernel.name}", Operand: "=", RTarget: "linux"}},
		TaskGroups: []*structs.TaskGroup{{
			Name: "frontend", Count: 3,
			Networks: []*structs.NetworkResource{{
				Mode:          "bridge",
				ReservedPorts: []structs.Port{{Label: "http", Value: 8080, To: 80}},
				DynamicPorts:  []structs.Port{{Label: "metrics", To: 9100}},
				DNS:           &structs.DNSConfig{Servers: []string{"1.1.1.1"}},
			}},
			Services: []*structs.Service{{
				Name: "web", PortLabel: "http", Provider: "nomad", Tags: []string{"v1"},
				Checks: []*structs.ServiceCheck{{Type: "http", Path: "/health", Interval: 10 * time.Second, Timeout: 2 * time.Second}},
			}},
			Tasks: []*structs.Task{{
				Name: "nginx", Driver: "containerd",
				Config:      map[string]any{"image": "nginx:1.27"},
				Env:         map[string]string{"A": "b"},
				Resources:   &structs.Resources{CPU: 500, MemoryMB: 256},
				KillTimeout: 20 * time.Second,
			}},
		}},
	}
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Errorf("decoded job (-want +got):\n%s", diff)
	}
}

// A Nomad client sends null for every attribute the job file left out.
func TestUnmarshal_NullsGetNomadDefaults(t *testing.T) {
	const doc = `{"Job": {"ID": "j", "Priority": null, "Type": "batch",
	  "Reschedule": {"Attempts": 4, "Interval": null},
	  "TaskGroups": [
	    {"Name": "a", "Count": null,
	     "RestartPolicy": {"Attempts": 0, "Interval": null, "Delay": null, "Mode": null},
	     "ReschedulePolicy": {"Delay": 60000000000},
	     "Tasks": [{"Name": "t", "RestartPolicy": {"Mode": "delay"}, "Templates": [{"DestPath": "x", "Splay": null}]}]},
	    {"Name": "b", "Count": 0},
	    {"Name": "c", "Scaling": {"Min": 2, "Max": 5}},
	    {"Name": "d", "Count": 4, "Scaling": {"Max": 9, "Enabled": null}}
	  ]}}`
	var req struct{ Job *structs.Job }
	if err := json.Unmarshal([]byte(doc), &req); err != nil {
		t.Fatal(err)
	}
	j := req.Job
	if j.Priority != 50 {
		t.Errorf("priority = %d, want 50", j.Priority)
	}
	counts := []int{j.TaskGroups[0].Count, j.TaskGroups[1].Count, j.TaskGroups[2].Count, j.TaskGroups[3].Count}
	if diff := cmp.Diff([]int{1, 0, 2, 4}, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if s := j.TaskGroups[3].Scaling; s.Min != 4 || !s.Enabled {
		t.Errorf("scaling without min = %+v, want min 4 (the count), enabled", s)
	}
	a := j.TaskGroups[0]
	wantRestart := &structs.RestartPolicy{Attempts: 0, Interval: 24 * time.Hour, Delay: 15 * time.Second, Mode: "fail"}
	if diff := cmp.Diff(wantRestart, a.RestartPolicy); diff != "" {
		t.Errorf("group restart (-want +got):\n%s", diff)
	}
	wantTaskRestart := *wantRestart
	wantTaskRestart.Mode = "delay"
	if diff := cmp.Diff(&wantTaskRestart, a.Tasks[0].RestartPolicy); diff != "" {
		t.Errorf("task restart inherits the group's (-want +got):\n%s", diff)
	}
	wantResched := &structs.ReschedulePolicy{Attempts: 4, Interval: 24 * time.Hour, Delay: time.Minute, DelayFunction: "constant"}
	if diff := cmp.Diff(wantResched, a.ReschedulePolicy); diff != "" {
		t.Errorf("group reschedule merges job's (-want +got):\n%s", diff)
	}
	if got := a.Tasks[0].Templates[0].Splay; got != 5*time.Second {
		t.Errorf("template splay = %v, want 5s", got)
	}
}

func TestUnmarshal_ExplicitZeroKept(t *testing.T) {
	var j structs.Job
	doc := `{"ID":"j","Priority":0,"Update":{"MaxParallel":0},"TaskGroups":[{"Name":"g","Count":0,"Update":{"Canary":2}}]}`
	if err := json.Unmarshal([]byte(doc), &j); err != nil {
		t.Fatal(err)
	}
	if j.Priority != 0 || j.TaskGroups[0].Count != 0 {
		t.Errorf("priority %d count %d, want explicit zeros", j.Priority, j.TaskGroups[0].Count)
	}
	want := structs.DefaultUpdateStrategy()
	want.MaxParallel = 0
	if diff := cmp.Diff(want, j.Update); diff != "" {
		t.Errorf("job update (-want +got):\n%s", diff)
	}
	want.Canary = 2
	if diff := cmp.Diff(want, j.TaskGroups[0].Update); diff != "" {
		t.Errorf("group update merges job's (-want +got):\n%s", diff)
	}
}

func TestCopyIsDeep(t *testing.T) {
	var orig structs.Job
	fill(reflect.ValueOf(&orig).Elem(), "Job", 0)
	orig.TaskGroups[0].Tasks[0].Config = map[string]any{"args": []any{"a"}, "nested": map[string]any{"k": "v"}}
	c := orig.Copy()
	if diff := cmp.Diff(&orig, c); diff != "" {
		t.Fatalf("copy differs (-orig +copy):\n%s", diff)
	}
	// Mutate every reachable reference in the copy; the original must not move.
	before := fmt.Sprintf("%#v", mustJSON(t, &orig))
	mutate(reflect.ValueOf(c).Elem(), 0)
	c.TaskGroups[0].Tasks[0].Config["args"].([]any)[0] = "mutated"
	c.TaskGroups[0].Tasks[0].Config["nested"].(map[string]any)["k"] = "mutated"
	if after := fmt.Sprintf("%#v", mustJSON(t, &orig)); after != before {
		t.Errorf("mutating the copy changed the original")
	}
	if (*structs.Job)(nil).Copy() != nil {
		t.Errorf("nil copy not nil")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mutate changes every scalar reachable through pointers, slices and maps.
func mutate(v reflect.Value, depth int) {
	if depth > 12 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			mutate(v.Elem(), depth+1)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				mutate(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			mutate(v.Index(i), depth+1)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			switch e.Kind() {
			case reflect.String:
				v.SetMapIndex(k, reflect.ValueOf("mutated").Convert(e.Type()))
			case reflect.Slice, reflect.Pointer, reflect.Map:
				mutate(e, depth+1)
			}
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(strings.ToUpper(v.String()) + "!")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.CanSet() {
			v.SetUint(v.Uint() + 1)
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	}
}

func TestStubAndLookups(t *testing.T) {
	j := &structs.Job{
		ID: "j", Name: "j", Namespace: "default", Type: "batch", Priority: 50,
		Periodic:   &structs.PeriodicConfig{Enabled: true, Spec: "@daily"},
		TaskGroups: []*structs.TaskGroup{{Name: "g", Tasks: []*structs.Task{{Name: "t"}}}},
		Meta:       map[string]string{"a": "b"},
	}
	s := j.Stub(&structs.JobSummary{JobID: "j"})
	if !s.Periodic || s.ParameterizedJob || s.JobSummary.JobID != "j" || s.Meta["a"] != "b" {
		t.Errorf("stub = %+v", s)
	}
	if j.LookupTaskGroup("g") == nil || j.LookupTaskGroup("x") != nil {
		t.Errorf("LookupTaskGroup")
	}
	if j.LookupTaskGroup("g").LookupTask("t") == nil || j.LookupTaskGroup("g").LookupTask("x") != nil {
		t.Errorf("LookupTask")
	}
}
