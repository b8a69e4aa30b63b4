package server_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// schedNode has room for 8 allocs of schedJob's size (memory bound).
func schedNode(i int) *structs.Node {
	name := fmt.Sprintf("node-%d", i)
	return &structs.Node{
		ID:                    fmt.Sprintf("%08d-0000-4000-8000-000000000000", i),
		SecretID:              "secret-" + name,
		Name:                  name,
		Datacenter:            "dc1",
		Status:                structs.NodeStatusReady,
		SchedulingEligibility: structs.NodeSchedulingEligible,
		Attributes:            map[string]string{"kernel.name": "linux", "driver.docker": "1"},
		Drivers:               map[string]*structs.DriverInfo{"docker": {Detected: true, Healthy: true}},
		NodeResources: &structs.NodeResources{
			Cpu:            structs.NodeCpuResources{CpuShares: 4000},
			Memory:         structs.NodeMemoryResources{MemoryMB: 1024},
			Disk:           structs.NodeDiskResources{DiskMB: 100_000},
			MinDynamicPort: 20000, MaxDynamicPort: 32000,
		},
	}
}

func schedJob(id string, count int) *structs.Job {
	j := testJob(id)
	j.Datacenters = []string{"dc1"}
	j.TaskGroups[0].Count = count
	j.TaskGroups[0].Tasks[0].Resources = &structs.Resources{CPU: 100, MemoryMB: 128}
	return j
}

func registerNode(t *testing.T, c *api.Client, n *structs.Node) {
	t.Helper()
	if _, err := c.ClientNodes().Register(n, nil); err != nil {
		t.Fatalf("register node %s: %v", n.Name, err)
	}
}

func liveAllocs(t *testing.T, s *server.Server, jobID string) []*structs.Allocation {
	t.Helper()
	all, err := s.State().AllocsByJob(nil, structs.DefaultNamespace, jobID)
	if err != nil {
		t.Fatal(err)
	}
	var out []*structs.Allocation
	for _, a := range all {
		if !a.TerminalStatus() {
			out = append(out, a)
		}
	}
	return out
}

// assertWithinCapacity checks every node's live allocs against its
// capacity with the arithmetic done here.
func assertWithinCapacity(t *testing.T, s *server.Server) {
	t.Helper()
	nodes, _ := s.State().Nodes(nil, "")
	for _, n := range nodes {
		allocs, _ := s.State().AllocsByNode(nil, n.ID)
		var mem, cpu int64
		for _, a := range allocs {
			if a.TerminalStatus() || a.AllocatedResources == nil {
				continue
			}
			for _, tr := range a.AllocatedResources.Tasks {
				mem += tr.Memory.MemoryMB
				cpu += tr.Cpu.CpuShares
			}
		}
		if mem > n.NodeResources.Memory.MemoryMB || cpu > n.NodeResources.Cpu.CpuShares {
			t.Fatalf("node %s over-committed: memory %d/%d cpu %d/%d", n.Name, mem, n.NodeResources.Memory.MemoryMB, cpu, n.NodeResources.Cpu.CpuShares)
		}
	}
}

func TestSchedulingEndToEnd(t *testing.T) {
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	for i := 1; i <= 3; i++ {
		registerNode(t, cl, schedNode(i))
	}

	// a job of count 12 on 3 nodes with room for 8 each
	resp, _, err := cl.Jobs().Register(schedJob("web", 12), nil)
	if err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 15*time.Second, "12 allocs of web", func() bool { return len(liveAllocs(t, s, "web")) == 12 })
	assertWithinCapacity(t, s)
	servertest.WaitFor(t, 10*time.Second, "the register eval to complete", func() bool {
		e, _ := s.State().EvalByID(nil, resp.EvalID)
		return e != nil && e.Status == structs.EvalStatusComplete
	})
	for _, a := range liveAllocs(t, s, "web") {
		if a.Job == nil || a.NodeID == "" || a.EvalID != resp.EvalID {
			t.Fatalf("alloc %s: job attached %v, node %q, eval %q", a.ID, a.Job != nil, a.NodeID, a.EvalID)
		}
	}

	// plan a bigger version: nothing is committed
	job, _, err := cl.Jobs().Info("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	bigger := schedJob("web", 30)
	plan, _, err := cl.Jobs().Plan(bigger, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.JobModifyIndex != job.JobModifyIndex {
		t.Fatalf("plan JobModifyIndex %d, want the registered %d", plan.JobModifyIndex, job.JobModifyIndex)
	}
	if plan.Annotations == nil || plan.Annotations.DesiredTGUpdates["web"] == nil {
		t.Fatalf("plan without annotations: %+v", plan)
	}
	if u := plan.Annotations.DesiredTGUpdates["web"]; u.Place != 18 {
		t.Fatalf("plan would place %d, want 18: %+v", u.Place, u)
	}
	if plan.FailedTGAllocs["web"] == nil {
		t.Fatalf("plan of 30 on room for 24 reports no failed placements: %+v", plan.FailedTGAllocs)
	}
	if got := len(liveAllocs(t, s, "web")); got != 12 {
		t.Fatalf("plan committed allocs: %d live", got)
	}
	if j, _, _ := cl.Jobs().Info("web", nil); j.TaskGroups[0].Count != 12 || j.JobModifyIndex != job.JobModifyIndex {
		t.Fatal("plan changed the registered job")
	}

	// register it: 24 fit, the rest blocks until a node joins
	if _, _, err := cl.Jobs().RegisterCheckIndex(bigger, plan.JobModifyIndex, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 15*time.Second, "24 allocs and a blocked eval", func() bool {
		if len(liveAllocs(t, s, "web")) != 24 {
			return false
		}
		evals, _ := s.State().EvalsByJob(nil, structs.DefaultNamespace, "web")
		for _, e := range evals {
			if e.Status == structs.EvalStatusBlocked {
				return true
			}
		}
		return false
	})
	assertWithinCapacity(t, s)
	var blockedID string
	evals, _ := s.State().EvalsByJob(nil, structs.DefaultNamespace, "web")
	for _, e := range evals {
		if e.Status == structs.EvalStatusBlocked {
			blockedID = e.ID
		}
	}
	registerNode(t, cl, schedNode(4))
	servertest.WaitFor(t, 15*time.Second, "30 allocs once capacity appeared", func() bool { return len(liveAllocs(t, s, "web")) == 30 })
	assertWithinCapacity(t, s)
	servertest.WaitFor(t, 10*time.Second, "the blocked eval to complete", func() bool {
		e, _ := s.State().EvalByID(nil, blockedID)
		return e != nil && e.Status == structs.EvalStatusComplete
	})
	if a := liveAllocs(t, s, "web"); !slices.ContainsFunc(a, func(a *structs.Allocation) bool { return a.EvalID == blockedID }) {
		t.Fatal("no alloc was placed by the unblocked eval")
	}

	// a forced evaluation changes nothing
	ev, _, err := cl.Jobs().Evaluate("web", structs.EvalOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EvalID == "" || ev.EvalCreateIndex == 0 {
		t.Fatalf("evaluate response %+v", ev)
	}
	servertest.WaitFor(t, 10*time.Second, "the forced eval to complete", func() bool {
		e, _ := s.State().EvalByID(nil, ev.EvalID)
		return e != nil && e.Status == structs.EvalStatusComplete
	})
	if got := len(liveAllocs(t, s, "web")); got != 30 {
		t.Fatalf("forced eval changed the allocs: %d", got)
	}

	// stop the job: every alloc is asked to stop
	if _, _, err := cl.Jobs().Deregister("web", false, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 15*time.Second, "all allocs desired stop", func() bool { return len(liveAllocs(t, s, "web")) == 0 })
	all, _ := s.State().AllocsByJob(nil, structs.DefaultNamespace, "web")
	for _, a := range all {
		if a.DesiredStatus != structs.AllocDesiredStatusStop {
			t.Fatalf("alloc %s desired %s after the job stopped", a.ID, a.DesiredStatus)
		}
	}
}

func TestSchedulerConfigurationEndpoint(t *testing.T) {
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	op := client(t, s).Operator()
	cfg, _, err := op.SchedulerGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SchedulerAlgorithm != structs.SchedulerAlgorithmBinpack || !cfg.PreemptionConfig.SystemSchedulerEnabled {
		t.Fatalf("default configuration %+v", cfg)
	}
	cfg.SchedulerAlgorithm = structs.SchedulerAlgorithmSpread
	set, _, err := op.SchedulerSetConfiguration(cfg, nil)
	if err != nil || !set.Updated || set.Index == 0 {
		t.Fatalf("set: %+v %v", set, err)
	}
	got, _, err := op.SchedulerGetConfiguration(nil)
	if err != nil || got.SchedulerAlgorithm != structs.SchedulerAlgorithmSpread || got.ModifyIndex != set.Index {
		t.Fatalf("get after set: %+v %v", got, err)
	}
	stale := *got
	stale.ModifyIndex = got.ModifyIndex - 1
	stale.PreemptionConfig.ServiceSchedulerEnabled = true
	if res, _, err := op.SchedulerCASConfiguration(&stale, nil); err != nil || res.Updated {
		t.Fatalf("CAS with a stale index: %+v %v", res, err)
	}
	fresh := *got
	fresh.PreemptionConfig.ServiceSchedulerEnabled = true
	if res, _, err := op.SchedulerCASConfiguration(&fresh, nil); err != nil || !res.Updated {
		t.Fatalf("CAS with the current index: %+v %v", res, err)
	}
	bad := *got
	bad.SchedulerAlgorithm = "random"
	if _, _, err := op.SchedulerSetConfiguration(&bad, nil); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}
