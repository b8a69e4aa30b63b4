package scheduler_test

import (
	"sort"
	"testing"

	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

// cluster returns a harness with n nodes.
func cluster(t testing.TB, n int) *schedtest.Harness {
	t.Helper()
	h := schedtest.New()
	for i := range n {
		h.State.UpsertNode(schedtest.Node(i))
	}
	return h
}

// run registers the job and processes a register eval, failing the test on
// error; it returns the final eval update.
func run(t testing.TB, h *schedtest.Harness, j *structs.Job) *structs.Evaluation {
	t.Helper()
	h.State.UpsertJob(j)
	return process(t, h, h.NewEval(j, structs.EvalTriggerJobRegister))
}

func process(t testing.TB, h *schedtest.Harness, e *structs.Evaluation) *structs.Evaluation {
	t.Helper()
	if err := h.Process(e); err != nil {
		t.Fatalf("process: %v", err)
	}
	if len(h.FitFailures) > 0 {
		t.Fatalf("plan over-committed nodes: %v", h.FitFailures)
	}
	return h.LastEval()
}

func live(h *schedtest.Harness, j *structs.Job) []*structs.Allocation {
	return h.State.LiveAllocs(j.Namespace, j.ID)
}

func names(allocs []*structs.Allocation) []string {
	var out []string
	for _, a := range allocs {
		out = append(out, a.Name)
	}
	sort.Strings(out)
	return out
}

// markRunning reports every live alloc of the job as running.
func markRunning(h *schedtest.Harness, j *structs.Job) {
	h.State.UpsertAllocs(schedtest.Running(live(h, j))...)
}

func nodesUsed(allocs []*structs.Allocation) map[string]int {
	m := map[string]int{}
	for _, a := range allocs {
		m[a.NodeID]++
	}
	return m
}
