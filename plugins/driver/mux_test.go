package driver

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestMuxRoutesByDriverNameAndTask(t *testing.T) {
	ctx := context.Background()
	a, b := newMemDriver(), newMemDriver()
	m, err := NewMux(MuxMember{Name: "a", Driver: a, Serves: []string{"mem"}},
		MuxMember{Name: "b", Driver: b, Serves: []string{"mem_off"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetConfig(ctx, &PluginConfig{StateDir: "/state"}); err != nil {
		t.Fatal(err)
	}
	if a.cfg.StateDir != filepath.Join("/state", "a") || b.cfg.StateDir != filepath.Join("/state", "b") {
		t.Fatalf("state dirs: a %q, b %q", a.cfg.StateDir, b.cfg.StateDir)
	}

	fps, err := m.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fp := range fps {
		names = append(names, fp.Name)
	}
	// each member reports mem and mem_off; only the names it serves count
	if len(names) != 2 || names[0] != "mem" || names[1] != "mem_off" {
		t.Fatalf("fingerprint names %v, want [mem mem_off]", names)
	}

	onA, onB := testTaskConfig("alloc-1/web"), testTaskConfig("alloc-2/db")
	onB.Driver = "mem_off"
	for _, c := range []*TaskConfig{onA, onB} {
		if _, err := m.StartTask(ctx, c); err != nil {
			t.Fatalf("start %s: %v", c.ID, err)
		}
	}
	if a.tasks[onA.ID] == nil || a.tasks[onB.ID] != nil || b.tasks[onB.ID] == nil || b.tasks[onA.ID] != nil {
		t.Fatalf("tasks not routed by driver name: a %v, b %v", a.tasks, b.tasks)
	}
	st, err := m.InspectTask(ctx, onB.ID)
	if err != nil || st == nil {
		t.Fatalf("inspect %s: %v", onB.ID, err)
	}

	if _, err := m.StartTask(ctx, &TaskConfig{ID: "x/y", Driver: "docker"}); err == nil {
		t.Fatal("a driver name no member serves was accepted")
	}
	if err := m.SignalTask(ctx, "nobody/here", "SIGHUP"); !errors.Is(err, ErrTaskNotFound) {
		t.Fatalf("unknown task: %v, want ErrTaskNotFound", err)
	}

	if err := m.DestroyTask(ctx, onA.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.InspectTask(ctx, onA.ID); !errors.Is(err, ErrTaskNotFound) {
		t.Fatalf("destroyed task still routed: %v", err)
	}

	// a new mux (a restarted plugin) learns tasks again from RecoverTask
	m2, _ := NewMux(MuxMember{Name: "a", Driver: newMemDriver(), Serves: []string{"mem"}},
		MuxMember{Name: "b", Driver: b, Serves: []string{"mem_off"}})
	if err := m2.RecoverTask(ctx, &TaskHandle{Config: onB}); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.InspectTask(ctx, onB.ID); err != nil {
		t.Fatalf("recovered task not routed: %v", err)
	}
	if err := m2.RecoverTask(ctx, &TaskHandle{}); err == nil {
		t.Fatal("a handle without config was accepted")
	}
}

func TestNewMuxRefusesAmbiguity(t *testing.T) {
	d := newMemDriver()
	cases := map[string][]MuxMember{
		"name served twice": {{Name: "a", Driver: d, Serves: []string{"mem"}}, {Name: "b", Driver: d, Serves: []string{"mem"}}},
		"member repeated":   {{Name: "a", Driver: d}, {Name: "a", Driver: d}},
		"nil driver":        {{Name: "a"}},
	}
	for what, members := range cases {
		if _, err := NewMux(members...); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}
