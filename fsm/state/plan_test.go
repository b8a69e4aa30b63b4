package state

import (
	"bytes"
	"context"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

func TestSchedulerConfigSurvivesSnapshot(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	write(t, s, func(t *Txn) error {
		return t.SetSchedulerConfig(6, &structs.SchedulerConfiguration{
			SchedulerAlgorithm: structs.SchedulerAlgorithmSpread,
			PreemptionConfig:   structs.PreemptionConfig{BatchSchedulerEnabled: true},
		}, false, 0)
	})
	restored, err := Restore(bytes.NewReader(persistBytes(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if d := diffStores(t, s, restored); d != "" {
		t.Fatalf("restored store differs (-orig +restored):\n%s", d)
	}
	cfg, err := restored.SchedulerConfig(nil)
	if err != nil || cfg.SchedulerAlgorithm != structs.SchedulerAlgorithmSpread || !cfg.PreemptionConfig.BatchSchedulerEnabled ||
		cfg.ModifyIndex != 6 || restored.Index(nil, TableSchedulerConfig) != 6 {
		t.Fatalf("restored config = %+v, %v", cfg, err)
	}
}

func TestSchedulerConfigBlockingQuery(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ws := memdb.NewWatchSet()
	if cfg, _ := s.SchedulerConfig(ws); cfg.EffectiveAlgorithm() != structs.SchedulerAlgorithmBinpack {
		t.Fatalf("default = %+v", cfg)
	}
	write(t, s, func(t *Txn) error { return t.SetSchedulerConfig(1, structs.DefaultSchedulerConfiguration(), false, 0) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ws.WatchCtx(ctx) != nil {
		t.Fatal("setting the config did not fire the watch")
	}
}

func TestUpdateAllocsFromClientTakesOnlyClientFields(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	before, _ := s.AllocByID(nil, "aa-1")
	write(t, s, func(t *Txn) error {
		return t.UpdateAllocsFromClient(6, []*structs.Allocation{{
			ID: "aa-1", ClientStatus: structs.AllocClientStatusComplete, ClientDescription: "done",
			TaskStates: map[string]*structs.TaskState{"t": {State: "dead"}}, ModifyTime: 42,
			// none of these may be taken from an agent
			NodeID: "elsewhere", DesiredStatus: structs.AllocDesiredStatusStop, JobID: "other", CreateIndex: 99,
		}, {ID: "gone"}}, 7)
	})
	a, _ := s.AllocByID(nil, "aa-1")
	if a.ClientStatus != structs.AllocClientStatusComplete || a.ClientDescription != "done" || a.TaskStates["t"] == nil ||
		a.ModifyTime != 42 || a.ModifyIndex != 6 || a.AllocModifyIndex != before.AllocModifyIndex ||
		a.NodeID != before.NodeID || a.DesiredStatus != before.DesiredStatus || a.JobID != "web" || a.CreateIndex != before.CreateIndex {
		t.Fatalf("alloc = %+v", a)
	}
	if g, _ := s.AllocByID(nil, "gone"); g != nil {
		t.Fatalf("unknown alloc created: %+v", g)
	}
	if got := s.Index(nil, TableAllocs); got != 6 {
		t.Fatalf("allocs index = %d, want 6", got)
	}
	// only unknown allocations: nothing changes, not even the table index
	write(t, s, func(t *Txn) error {
		return t.UpdateAllocsFromClient(7, []*structs.Allocation{{ID: "gone"}}, 7)
	})
	if got := s.Index(nil, TableAllocs); got != 6 {
		t.Fatalf("allocs index = %d after an update of unknown allocs, want 6", got)
	}
}

func TestUpsertPlanResultsSkipsMissingStops(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	write(t, s, func(t *Txn) error {
		return t.UpsertPlanResults(6, &PlanResults{
			AllocsStopped: []*structs.Allocation{{ID: "gone"}, {ID: "aa-2", DesiredDescription: "stopped"}},
			UpdatedAt:     9,
		})
	})
	a, _ := s.AllocByID(nil, "aa-2")
	if a.DesiredStatus != structs.AllocDesiredStatusStop || a.DesiredDescription != "stopped" || a.ModifyTime != 9 || a.ClientStatus != structs.AllocClientStatusPending {
		t.Fatalf("stopped alloc = %+v", a)
	}
	if g, _ := s.AllocByID(nil, "gone"); g != nil {
		t.Fatalf("stop created an alloc: %+v", g)
	}
}
