package allocrunner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/internal/hostproctest"
	"github.com/berth-dev/berth/agent/state"
	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

// gatedDriver is a hostproctest driver whose StartTask and DestroyTask
// can be held at a gate, to stop the task runner at a chosen point.
type gatedDriver struct {
	*hostproctest.Driver
	startGate   chan struct{} // nil: StartTask passes at once
	startCalled chan struct{} // closed on the first StartTask call, with startGate
	destroyGate chan struct{} // nil: DestroyTask passes at once
	destroyAt   chan time.Time
}

func (d *gatedDriver) StartTask(ctx context.Context, cfg *driver.TaskConfig) (*driver.TaskHandle, error) {
	h, err := d.Driver.StartTask(ctx, cfg)
	if d.startGate != nil {
		select {
		case <-d.startCalled:
		default:
			close(d.startCalled)
			<-d.startGate // the process runs; the runner has not seen it yet
		}
	}
	return h, err
}

func (d *gatedDriver) DestroyTask(ctx context.Context, id string, force bool) error {
	if d.destroyAt != nil {
		d.destroyAt <- time.Now()
	}
	if d.destroyGate != nil {
		<-d.destroyGate
	}
	return d.Driver.DestroyTask(ctx, id, force)
}

// A user restart that arrives while the driver is starting the task (its
// process already runs) is queued and served, not refused.
func TestRestartWhileStartingIsServed(t *testing.T) {
	task := shTask("web", `echo up >> "$NOMAD_ALLOC_DIR/starts"; exec sleep 30`)
	a := testAlloc(structs.JobTypeService, nil, task)
	d := &gatedDriver{Driver: hostproctest.New("raw_exec"), startGate: make(chan struct{}), startCalled: make(chan struct{})}
	ar := newTestRunner(t, a, d)
	ar.Run()
	select {
	case <-d.startCalled:
	case <-time.After(10 * time.Second):
		t.Fatal("driver never asked to start the task")
	}
	if st := ar.Alloc().TaskStates["web"].State; st == TaskStateRunning {
		t.Fatalf("task already %s while its start is held", st)
	}
	if err := ar.Restart(context.Background(), "web", false); err != nil {
		t.Fatalf("restart while starting: %v", err)
	}
	close(d.startGate)
	waitFor(t, 10*time.Second, "second start", func() bool { return d.Starts(a.ID+"/web") == 2 })
	waitFor(t, 10*time.Second, "running again", func() bool {
		st := ar.Alloc().TaskStates["web"]
		return st.State == TaskStateRunning && st.Restarts == 1
	})
	// a task that is not running at all is still refused
	ar.Kill()
	waitDone(t, ar, 10*time.Second)
	if err := ar.Restart(context.Background(), "web", false); err == nil {
		t.Fatal("restart of a dead task accepted")
	}
}

// A batch task is reported dead (and its alloc complete) before the
// driver removes its container; the alloc runner is only done, and may
// remove the alloc dir, once that removal returned.
func TestFinishReportsDeadBeforeDestroy(t *testing.T) {
	task := shTask("job", `echo bye > "$NOMAD_ALLOC_DIR/out"`)
	a := testAlloc(structs.JobTypeBatch, &structs.RestartPolicy{Attempts: 0, Interval: time.Minute, Mode: "fail"}, task)
	d := &gatedDriver{Driver: hostproctest.New("raw_exec"), destroyGate: make(chan struct{}), destroyAt: make(chan time.Time, 1)}
	ar := newTestRunner(t, a, d)
	ar.Run()
	var destroyAt time.Time
	select {
	case destroyAt = <-d.destroyAt:
	case <-time.After(20 * time.Second):
		t.Fatal("driver never asked to destroy the task")
	}
	got := ar.Alloc()
	st := got.TaskStates["job"]
	if got.ClientStatus != structs.AllocClientStatusComplete || st.State != TaskStateDead {
		t.Fatalf("while the container is being removed: alloc %s, task %s; want complete, dead", got.ClientStatus, st.State)
	}
	if st.FinishedAt.IsZero() || st.FinishedAt.After(destroyAt) {
		t.Fatalf("FinishedAt %v, want the exit's time, before the removal started (%v)", st.FinishedAt, destroyAt)
	}
	if evs := strings.Join(eventTypes(st), ","); !strings.HasSuffix(evs, EventTerminated) {
		t.Fatalf("events %s, want Terminated last", evs)
	}
	select {
	case <-ar.WaitCh():
		t.Fatal("alloc runner done before the container was removed")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := os.Stat(filepath.Join(ar.AllocDir().SharedDir, "out")); err != nil {
		t.Fatalf("alloc dir gone while the container is being removed: %v", err)
	}
	close(d.destroyGate)
	waitDone(t, ar, 10*time.Second)
	if ids := d.TaskIDs(); len(ids) != 0 {
		t.Fatalf("driver still has tasks %v", ids)
	}
	if finished := ar.Alloc().TaskStates["job"].FinishedAt; !finished.Equal(st.FinishedAt) {
		t.Fatalf("FinishedAt moved from %v to %v after the removal", st.FinishedAt, finished)
	}
}

// An agent that stopped between reporting a task dead and removing its
// container left the handle in its state: the restored runner removes it.
func TestRestoredDeadTaskWithHandleIsDestroyed(t *testing.T) {
	task := shTask("job", `true`)
	a := testAlloc(structs.JobTypeBatch, nil, task)
	d := hostproctest.New("raw_exec")
	h, err := d.StartTask(context.Background(), &driver.TaskConfig{ID: a.ID + "/job", Driver: "raw_exec",
		DriverConfig: []byte(`{"command":"/bin/sleep","args":["30"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	ar := newTestRunner(t, a, d)
	ar.Restore(map[string]*state.Task{"job": {Driver: "raw_exec", Handle: h,
		State: &structs.TaskState{State: TaskStateDead, FinishedAt: time.Now()}}})
	ar.Run()
	waitDone(t, ar, 10*time.Second)
	if ids := d.TaskIDs(); len(ids) != 0 {
		t.Fatalf("left-over task not destroyed: %v", ids)
	}
}
