package taskenv

import (
	"reflect"
	"testing"

	"github.com/berth-dev/berth/structs"
)

func testFixture() (*structs.Node, *structs.Allocation, *structs.Task) {
	node := &structs.Node{
		ID: "node-1", Name: "worker1", Datacenter: "dc1", NodeClass: "gpu", NodePool: "default",
		Attributes: map[string]string{"kernel.name": "linux"},
		Meta:       map[string]string{"rack": "r1"},
	}
	task := &structs.Task{
		Name:      "web",
		Resources: &structs.Resources{CPU: 100, MemoryMB: 64},
		Meta:      map[string]string{"tier": "task", "my-key": "v"},
		Env: map[string]string{
			"GREETING":     "hi ${NOMAD_TASK_NAME} on ${node.unique.name}/${attr.kernel.name}/${meta.rack}",
			"UNKNOWN":      "${nope} ${NOMAD_ALLOC_INDEX}",
			"NOMAD_REGION": "overridden",
		},
	}
	job := &structs.Job{
		ID: "example", Name: "example-name", Namespace: "default", ParentID: "parent",
		Meta: map[string]string{"tier": "job", "owner": "ops"},
		TaskGroups: []*structs.TaskGroup{{
			Name: "cache", Meta: map[string]string{"tier": "group"}, Tasks: []*structs.Task{task},
		}},
	}
	alloc := &structs.Allocation{
		ID: "0123456789abcdef", Name: "example.cache[2]", Namespace: "default",
		JobID: "example", TaskGroup: "cache", Job: job,
		AllocatedResources: &structs.AllocatedResources{
			Tasks: map[string]*structs.AllocatedTaskResources{
				"web": {
					Cpu:    structs.AllocatedCpuResources{CpuShares: 500, ReservedCores: []uint16{3, 0, 1, 2, 7}},
					Memory: structs.AllocatedMemoryResources{MemoryMB: 256, MemoryMaxMB: 512},
				},
			},
			Shared: structs.AllocatedSharedResources{
				Ports: []structs.AllocatedPortMapping{
					{Label: "http", Value: 25000, To: 8080, HostIP: "10.0.0.5"},
					{Label: "db-port", Value: 25001, HostIP: "10.0.0.5"},
				},
			},
		},
	}
	return node, alloc, task
}

func TestBuildNomadVars(t *testing.T) {
	node, alloc, task := testFixture()
	env := NewBuilder(node, alloc, task, "global").
		SetDirs("/alloc", "/local", "/secrets").
		SetAllocIP("172.26.0.9").
		Build()
	m := env.Map()
	want := map[string]string{
		"NOMAD_ALLOC_DIR":         "/alloc",
		"NOMAD_TASK_DIR":          "/local",
		"NOMAD_SECRETS_DIR":       "/secrets",
		"NOMAD_ALLOC_ID":          "0123456789abcdef",
		"NOMAD_SHORT_ALLOC_ID":    "01234567",
		"NOMAD_ALLOC_NAME":        "example.cache[2]",
		"NOMAD_ALLOC_INDEX":       "2",
		"NOMAD_TASK_NAME":         "web",
		"NOMAD_GROUP_NAME":        "cache",
		"NOMAD_JOB_ID":            "example",
		"NOMAD_JOB_NAME":          "example-name",
		"NOMAD_JOB_PARENT_ID":     "parent",
		"NOMAD_NAMESPACE":         "default",
		"NOMAD_DC":                "dc1",
		"NOMAD_CPU_LIMIT":         "500",
		"NOMAD_CPU_CORES":         "0-3,7",
		"NOMAD_MEMORY_LIMIT":      "256",
		"NOMAD_MEMORY_MAX_LIMIT":  "512",
		"NOMAD_META_tier":         "task",
		"NOMAD_META_TIER":         "task",
		"NOMAD_META_owner":        "ops",
		"NOMAD_META_OWNER":        "ops",
		"NOMAD_META_my-key":       "v",
		"NOMAD_META_MY_KEY":       "v",
		"NOMAD_IP_http":           "10.0.0.5",
		"NOMAD_PORT_http":         "8080",
		"NOMAD_HOST_PORT_http":    "25000",
		"NOMAD_ADDR_http":         "10.0.0.5:25000",
		"NOMAD_HOST_ADDR_http":    "10.0.0.5:25000",
		"NOMAD_HOST_IP_http":      "10.0.0.5",
		"NOMAD_ALLOC_PORT_http":   "8080",
		"NOMAD_ALLOC_IP_http":     "172.26.0.9",
		"NOMAD_ALLOC_ADDR_http":   "172.26.0.9:8080",
		"NOMAD_PORT_db-port":      "25001",
		"NOMAD_PORT_db_port":      "25001",
		"NOMAD_HOST_PORT_db_port": "25001",
		"BERTH_ALLOC_ID":          "0123456789abcdef",
		"BERTH_PORT_http":         "8080",
		"BERTH_REGION":            "global",
		"GREETING":                "hi web on worker1/linux/r1",
		"UNKNOWN":                 "${nope} 2",
		"NOMAD_REGION":            "overridden", // the env block wins, as in Nomad
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if _, ok := m["PATH"]; ok {
		t.Error("host env leaked without SetHostEnv")
	}
}

func TestHostAndTemplateEnvPrecedence(t *testing.T) {
	node, alloc, task := testFixture()
	task.Env = map[string]string{"A": "task", "B": "task"}
	m := NewBuilder(node, alloc, task, "r").
		SetHostEnv(map[string]string{"PATH": "/bin", "A": "host", "NOMAD_TASK_NAME": "host"}).
		SetTemplateEnv(map[string]string{"B": "template"}).
		Build().Map()
	if m["PATH"] != "/bin" || m["A"] != "task" || m["B"] != "template" || m["NOMAD_TASK_NAME"] != "web" {
		t.Fatalf("precedence wrong: PATH=%q A=%q B=%q NOMAD_TASK_NAME=%q", m["PATH"], m["A"], m["B"], m["NOMAD_TASK_NAME"])
	}
}

func TestReplaceEnv(t *testing.T) {
	node, alloc, task := testFixture()
	env := NewBuilder(node, alloc, task, "global").Build()
	cases := map[string]string{
		"${node.unique.id}": "node-1",
		"${node.datacenter}-${node.class}-${node.pool}-${node.region}": "dc1-gpu-default-global",
		"x${NOMAD_ALLOC_ID}y":         "x0123456789abcdefy",
		"${ NOMAD_JOB_ID }":           "example",
		"${unknown.thing}":            "${unknown.thing}",
		"unterminated ${NOMAD_JOB_ID": "unterminated ${NOMAD_JOB_ID",
		"$NOMAD_JOB_ID":               "$NOMAD_JOB_ID",
		"":                            "",
	}
	for in, want := range cases {
		if got := env.ReplaceEnv(in); got != want {
			t.Errorf("ReplaceEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReplaceConfigDeepCopies(t *testing.T) {
	node, alloc, task := testFixture()
	env := NewBuilder(node, alloc, task, "global").Build()
	cfg := map[string]any{
		"image":  "app:${NOMAD_JOB_ID}",
		"args":   []any{"--id", "${NOMAD_ALLOC_ID}", 3},
		"labels": []map[string]any{{"k": "${NOMAD_TASK_NAME}"}},
		"nested": map[string]any{"deep": []string{"${node.unique.id}"}, "n": 1.5, "b": true},
		"ss":     map[string]string{"a": "${NOMAD_GROUP_NAME}"},
	}
	got := env.ReplaceConfig(cfg)
	want := map[string]any{
		"image":  "app:example",
		"args":   []any{"--id", "0123456789abcdef", 3},
		"labels": []map[string]any{{"k": "web"}},
		"nested": map[string]any{"deep": []string{"node-1"}, "n": 1.5, "b": true},
		"ss":     map[string]string{"a": "cache"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	if cfg["image"] != "app:${NOMAD_JOB_ID}" || cfg["args"].([]any)[1] != "${NOMAD_ALLOC_ID}" {
		t.Fatal("input modified")
	}
	if env.ReplaceConfig(nil) != nil {
		t.Fatal("nil config should stay nil")
	}
}

func TestNilInputs(t *testing.T) {
	m := NewBuilder(nil, nil, nil, "").Build().Map()
	if len(m) != 0 {
		t.Fatalf("expected empty env, got %v", m)
	}
}

func TestLegacyTaskNetworks(t *testing.T) {
	node, alloc, task := testFixture()
	alloc.AllocatedResources.Shared.Ports = nil
	alloc.AllocatedResources.Tasks["web"].Networks = []*structs.NetworkResource{{
		IP: "10.1.1.1", DynamicPorts: []structs.Port{{Label: "admin", Value: 31000}},
	}}
	m := NewBuilder(node, alloc, task, "").Build().Map()
	if m["NOMAD_ADDR_admin"] != "10.1.1.1:31000" || m["NOMAD_PORT_admin"] != "31000" {
		t.Fatalf("legacy network vars: %q %q", m["NOMAD_ADDR_admin"], m["NOMAD_PORT_admin"])
	}
}
