package server_test

import (
	"net/http"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/internal/servertest"
)

// The official Nomad client drives the node lifecycle an operator scripts:
// list nodes, list a node's allocations, drain it (with a deadline and
// ignoring system jobs), watch the drain complete, make it eligible again,
// and stop one allocation so that its job replaces it.
func TestNomadClientNodeLifecycle(t *testing.T) {
	s, _ := drainFleet(t, 2, 0)
	nc := nomadClient(t, "http://"+s.HTTPAddr())

	nodes, _, err := nc.Nodes().List(nil)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes().List = %d nodes, %v; want 2", len(nodes), err)
	}
	for _, n := range nodes {
		if n.Status != "ready" || n.SchedulingEligibility != "eligible" {
			t.Fatalf("node %s: status %s, eligibility %s", n.ID, n.Status, n.SchedulingEligibility)
		}
	}

	job := nomadServiceJob("lifecycle")
	*job.TaskGroups[0].Count = 4
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, s, *job.ID, 4)
	nodeID, onNode := busiestNode(t, s, *job.ID)
	allocs, _, err := nc.Nodes().Allocations(nodeID, nil)
	if err != nil || len(allocs) != onNode {
		t.Fatalf("Nodes().Allocations = %d, %v; the server has %d on the node", len(allocs), err, onNode)
	}
	for _, a := range allocs {
		if a.NodeID != nodeID || *a.Job.ID != *job.ID || a.ClientStatus != "running" {
			t.Fatalf("allocation %s: node %s, job %s, status %s", a.ID, a.NodeID, *a.Job.ID, a.ClientStatus)
		}
	}

	resp, err := nc.Nodes().UpdateDrain(nodeID, &nomad.DrainSpec{Deadline: time.Hour, IgnoreSystemJobs: true}, false, nil)
	if err != nil || resp.NodeModifyIndex == 0 {
		t.Fatalf("UpdateDrain = %+v, %v", resp, err)
	}
	n, _, err := nc.Nodes().Info(nodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy == nil || n.DrainStrategy.Deadline != time.Hour || !n.DrainStrategy.IgnoreSystemJobs ||
		n.SchedulingEligibility != "ineligible" {
		t.Fatalf("draining node: strategy %+v, eligibility %s", n.DrainStrategy, n.SchedulingEligibility)
	}
	servertest.WaitFor(t, 20*time.Second, "drain complete", func() bool {
		n, _, err := nc.Nodes().Info(nodeID, nil)
		return err == nil && n.DrainStrategy == nil
	})
	waitRunning(t, s, *job.ID, 4)
	for _, a := range liveAllocs(t, s, *job.ID) {
		if a.NodeID == nodeID {
			t.Fatalf("allocation %s still on the drained node", a.ID)
		}
	}

	if _, err := nc.Nodes().ToggleEligibility(nodeID, true, nil); err != nil {
		t.Fatal(err)
	}
	if n, _, err := nc.Nodes().Info(nodeID, nil); err != nil || n.SchedulingEligibility != "eligible" {
		t.Fatalf("after ToggleEligibility: %+v, %v", n, err)
	}

	live := liveAllocs(t, s, *job.ID)
	stopped, _, err := nc.Allocations().Info(live[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := nc.Allocations().Stop(stopped, nil)
	if err != nil || stop.EvalID == "" {
		t.Fatalf("Allocations().Stop = %+v, %v", stop, err)
	}
	servertest.WaitFor(t, 15*time.Second, "stopped allocation replaced", func() bool {
		a, _, err := nc.Allocations().Info(stopped.ID, nil)
		if err != nil || a.DesiredStatus != "stop" {
			return false
		}
		for _, l := range liveAllocs(t, s, *job.ID) {
			if l.ID == stopped.ID {
				return false
			}
		}
		return len(liveAllocs(t, s, *job.ID)) == 4
	})

	// unknown IDs are 404s, not 500s
	const unknown = "00000000-0000-4000-8000-00000000dead"
	if _, err := nc.Nodes().UpdateDrain(unknown, &nomad.DrainSpec{Deadline: time.Hour}, false, nil); statusCode(t, err) != http.StatusNotFound {
		t.Fatalf("drain of an unknown node: %v", err)
	}
	if _, err := nc.Allocations().Stop(&nomad.Allocation{ID: unknown}, nil); statusCode(t, err) != http.StatusNotFound {
		t.Fatalf("stop of an unknown allocation: %v", err)
	}
}
