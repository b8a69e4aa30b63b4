package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/internal/simnodes"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// drainFleet starts a one-server cluster and n simulated nodes in dc1
// whose allocations take ackDelay to "start".
func drainFleet(t *testing.T, n int, ackDelay time.Duration) (*server.Server, []string) {
	t.Helper()
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(10 * time.Second)
	sim, err := simnodes.New(simnodes.Config{
		Address: "http://" + s.HTTPAddr(), Nodes: n, Datacenters: []string{"dc1"}, Classes: []string{},
		RegisterReady: true, AckDelay: ackDelay, WatchWait: 200 * time.Millisecond,
		MinPollInterval: 20 * time.Millisecond, AckInterval: 5 * time.Millisecond, Seed: uint64(time.Now().UnixNano()),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simulator: %v", err)
		}
	})
	select {
	case <-sim.Ready():
	case err := <-done:
		t.Fatalf("simulator stopped: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("simulated nodes not ready")
	}
	return s, sim.NodeIDs()
}

// putDrain sends Nomad's NodeUpdateDrainRequest over plain HTTP.
func putDrain(t *testing.T, s *server.Server, nodeID string, body map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.HTTPAddr()+"/v1/node/"+nodeID+"/drain", strings.NewReader(string(b)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("drain %s: status %d, %v", nodeID, resp.StatusCode, err)
	}
	return out
}

func allocsOnNode(t *testing.T, s *server.Server, nodeID string) []*structs.Allocation {
	t.Helper()
	all, err := s.State().AllocsByNode(nil, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// busiestNode is the node with the most live allocations of the job.
func busiestNode(t *testing.T, s *server.Server, jobID string) (string, int) {
	counts := map[string]int{}
	for _, a := range liveAllocs(t, s, jobID) {
		counts[a.NodeID]++
	}
	best, n := "", 0
	for id, c := range counts {
		if c > n {
			best, n = id, c
		}
	}
	return best, n
}

func waitRunning(t *testing.T, s *server.Server, jobID string, want int) {
	t.Helper()
	servertest.WaitFor(t, 15*time.Second, fmt.Sprintf("%d allocations of %s running", want, jobID), func() bool {
		n := 0
		for _, a := range liveAllocs(t, s, jobID) {
			if a.ClientStatus == structs.AllocClientStatusRunning {
				n++
			}
		}
		return n == want
	})
}

// migrationsInFlight counts a group's migrations from the state: marked
// allocations not stopped yet, and replacements of marked allocations
// that are not running yet.
func migrationsInFlight(t *testing.T, s *server.Server, jobID string) int {
	all, _ := s.State().AllocsByJob(nil, structs.DefaultNamespace, jobID)
	marked := map[string]bool{}
	for _, a := range all {
		if a.DesiredTransition.ShouldMigrate() {
			marked[a.ID] = true
		}
	}
	n := 0
	for _, a := range all {
		switch {
		case a.DesiredTransition.ShouldMigrate() && !a.TerminalStatus():
			n++
		case marked[a.PreviousAllocation] && !a.TerminalStatus() && a.ClientStatus != structs.AllocClientStatusRunning:
			n++
		}
	}
	return n
}

func drainedNode(t *testing.T, s *server.Server, id string) *structs.Node {
	n, err := s.State().NodeByID(nil, id)
	if err != nil || n == nil {
		t.Fatalf("node %s: %v", id, err)
	}
	return n
}

func hasEvent(n *structs.Node, msg string) bool {
	for _, e := range n.Events {
		if e.Message == msg {
			return true
		}
	}
	return false
}

// A drain moves a service group off the node at most max_parallel at a
// time, moves system allocations last, then completes: the node keeps no
// strategy, stays ineligible and records the completion.
func TestDrainMigratesRespectingMaxParallel(t *testing.T) {
	s, _ := drainFleet(t, 2, 150*time.Millisecond)
	cl := client(t, s)
	job := schedJob("web", 6)
	job.TaskGroups[0].Migrate = &structs.MigrateStrategy{MaxParallel: 2}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	sys := schedJob("agent", 1)
	sys.Type = structs.JobTypeSystem
	if _, _, err := cl.Jobs().Register(sys, nil); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, s, job.ID, 6)
	waitRunning(t, s, sys.ID, 2)
	nodeID, onNode := busiestNode(t, s, job.ID)
	if onNode < 3 {
		t.Fatalf("want at least 3 allocations on one node to watch max_parallel, got %d", onNode)
	}

	resp := putDrain(t, s, nodeID, map[string]any{"DrainSpec": map[string]any{"Deadline": int64(time.Hour)}})
	if resp["NodeModifyIndex"] == nil {
		t.Fatalf("drain response = %v", resp)
	}
	if n := drainedNode(t, s, nodeID); n.DrainStrategy == nil || n.SchedulingEligibility != structs.NodeSchedulingIneligible ||
		n.DrainStrategy.ForceDeadline.Sub(n.DrainStrategy.StartedAt) != time.Hour {
		t.Fatalf("node after drain start = %+v", n)
	}

	maxSeen := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("drain did not complete; node %+v", drainedNode(t, s, nodeID))
		}
		maxSeen = max(maxSeen, migrationsInFlight(t, s, job.ID))
		// system allocations go only once the service ones are gone
		serviceLeft := false
		for _, a := range allocsOnNode(t, s, nodeID) {
			if a.JobID == job.ID && !a.TerminalStatus() {
				serviceLeft = true
			}
		}
		for _, a := range allocsOnNode(t, s, nodeID) {
			if a.JobID == sys.ID && a.DesiredTransition.ShouldMigrate() && serviceLeft {
				t.Fatal("system allocation marked while service allocations remain on the node")
			}
		}
		if n := drainedNode(t, s, nodeID); n.DrainStrategy == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("max migrations in flight: %d", maxSeen)
	if maxSeen < 1 || maxSeen > 2 {
		t.Fatalf("max migrations in flight = %d, want 1..2 (max_parallel 2)", maxSeen)
	}
	n := drainedNode(t, s, nodeID)
	if n.Drain || n.SchedulingEligibility != structs.NodeSchedulingIneligible || !hasEvent(n, "Node drain complete") {
		t.Fatalf("node after drain = %+v (events %v)", n, n.Events)
	}
	for _, a := range allocsOnNode(t, s, nodeID) {
		if !a.TerminalStatus() {
			t.Fatalf("allocation %s (%s) still live on the drained node", a.ID, a.JobID)
		}
	}
	waitRunning(t, s, job.ID, 6)
	for _, a := range liveAllocs(t, s, job.ID) {
		if a.NodeID == nodeID {
			t.Fatalf("replacement %s placed on the drained node", a.ID)
		}
	}
	if live := liveAllocs(t, s, sys.ID); len(live) != 1 || live[0].NodeID == nodeID {
		t.Fatalf("system allocations after drain = %+v", live)
	}
}

// Batch work waits for the deadline; at the deadline whatever is left is
// stopped and the drain completes.
func TestDrainDeadlineForcesStop(t *testing.T) {
	s, _ := drainFleet(t, 2, 0)
	cl := client(t, s)
	job := schedJob("crunch", 2)
	job.Type = structs.JobTypeBatch
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, s, job.ID, 2)
	nodeID, _ := busiestNode(t, s, job.ID)
	const deadline = 1500 * time.Millisecond
	start := time.Now()
	putDrain(t, s, nodeID, map[string]any{"DrainSpec": map[string]any{"Deadline": int64(deadline)}})

	time.Sleep(deadline / 3)
	onNode := allocsOnNode(t, s, nodeID)
	if time.Since(start) < deadline { // a stalled test may look after it
		for _, a := range onNode {
			if a.JobID == job.ID && (a.TerminalStatus() || a.DesiredTransition.ShouldMigrate()) {
				t.Fatalf("batch allocation %s moved before the deadline", a.ID)
			}
		}
	}
	servertest.WaitFor(t, 15*time.Second, "drain completes after the deadline", func() bool {
		return drainedNode(t, s, nodeID).DrainStrategy == nil
	})
	if took := time.Since(start); took < deadline {
		t.Fatalf("drain completed after %s, before its deadline %s", took, deadline)
	}
	for _, a := range allocsOnNode(t, s, nodeID) {
		if !a.TerminalStatus() {
			t.Fatalf("allocation %s still live after the deadline", a.ID)
		}
	}
}

// A negative deadline forces the drain at once; cancelling a drain with
// MarkEligible stops it and makes the node eligible again.
func TestDrainForceAndCancel(t *testing.T) {
	s, nodes := drainFleet(t, 2, 0)
	cl := client(t, s)

	// cancel: a node with nothing to move would complete at once, so the
	// batch job waits for a deadline far away
	job := schedJob("crunch", 2)
	job.Type = structs.JobTypeBatch
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, s, job.ID, 2)
	nodeID, _ := busiestNode(t, s, job.ID)
	putDrain(t, s, nodeID, map[string]any{"DrainSpec": map[string]any{"Deadline": int64(time.Hour)}})
	putDrain(t, s, nodeID, map[string]any{"DrainSpec": nil, "MarkEligible": true})
	n := drainedNode(t, s, nodeID)
	if n.DrainStrategy != nil || n.Drain || n.SchedulingEligibility != structs.NodeSchedulingEligible ||
		!hasEvent(n, "Node drain disabled") || hasEvent(n, "Node drain complete") {
		t.Fatalf("node after cancel = %+v", n)
	}

	// force: everything leaves now, even batch work
	putDrain(t, s, nodeID, map[string]any{"DrainSpec": map[string]any{"Deadline": -1}})
	servertest.WaitFor(t, 15*time.Second, "forced drain completes", func() bool {
		return drainedNode(t, s, nodeID).DrainStrategy == nil
	})
	for _, a := range allocsOnNode(t, s, nodeID) {
		if !a.TerminalStatus() {
			t.Fatalf("allocation %s still live after a forced drain", a.ID)
		}
	}
	// an unknown node is a 404
	_, _, err := cl.Nodes().UpdateDrain("00000000-0000-4000-8000-00000000dead", &structs.DrainSpec{}, false, nil)
	if !api.IsNotFound(err) {
		t.Fatalf("drain of unknown node: %v", err)
	}
	_ = nodes
}
