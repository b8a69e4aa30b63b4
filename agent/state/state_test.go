package state

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

func TestStateRoundTripAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &structs.Allocation{ID: "a1", JobID: "web", Job: &structs.Job{ID: "web"}}
	if err := db.PutAlloc(a); err != nil {
		t.Fatal(err)
	}
	h := &driver.TaskHandle{Version: 1, Config: &driver.TaskConfig{ID: "a1/t"}, State: json.RawMessage(`{"pid":7}`), StartedAt: time.Unix(10, 0).UTC()}
	if err := db.PutTask("a1", "t", &Task{Driver: "docker", Handle: h, State: &structs.TaskState{State: "running", Restarts: 2}}); err != nil {
		t.Fatal(err)
	}
	// a task of an alloc that is not stored (destroyed meanwhile) is dropped
	if err := db.PutTask("gone", "t", &Task{Driver: "docker"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Allocs()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Alloc.ID != "a1" || got[0].Alloc.Job.ID != "web" {
		t.Fatalf("allocs %+v", got)
	}
	task := got[0].Tasks["t"]
	if task == nil || task.Driver != "docker" || task.State.Restarts != 2 || string(task.Handle.State) != `{"pid":7}` || task.Handle.Config.ID != "a1/t" {
		t.Fatalf("task %+v", task)
	}
	if err := db.DeleteAlloc("a1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAlloc("a1"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if got, _ := db.Allocs(); len(got) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
}

// TestConcurrentWritesAllLand: the task runners of many allocations write
// at once; every write is there after a reopen.
func TestConcurrentWritesAllLand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const allocs, tasks = 20, 5
	var wg sync.WaitGroup
	errs := make(chan error, allocs*tasks)
	for i := range allocs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("alloc-%d", i)
			if err := db.PutAlloc(&structs.Allocation{ID: id}); err != nil {
				errs <- err
				return
			}
			for j := range tasks {
				if err := db.PutTask(id, fmt.Sprintf("t%d", j), &Task{Driver: "exec", State: &structs.TaskState{Restarts: uint64(j)}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Allocs()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != allocs {
		t.Fatalf("%d allocs after reopen, want %d", len(got), allocs)
	}
	for _, a := range got {
		for j := range tasks {
			if task := a.Tasks[fmt.Sprintf("t%d", j)]; task == nil || task.State.Restarts != uint64(j) {
				t.Fatalf("alloc %s task t%d: %+v", a.Alloc.ID, j, task)
			}
		}
	}
}
