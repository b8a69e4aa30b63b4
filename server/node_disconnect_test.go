package server_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// A node that misses heartbeats while running a group with a disconnect
// window is disconnected, not down: its allocation is unknown and a
// replacement runs elsewhere. Back within the window, the original is kept
// and the replacement stopped; silent past the window, it is lost.
func TestNodeDisconnectWindow(t *testing.T) {
	const ttl = 300 * time.Millisecond
	c := servertest.NewCluster(t, 1, servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.MinHeartbeatTTL = ttl
		cfg.HeartbeatGrace = ttl / 2
		cfg.FailoverHeartbeatTTL = ttl
	}))
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	flaky, steady := schedNode(1), schedNode(2)
	registerNode(t, cl, flaky)
	registerNode(t, cl, steady)

	var flakyBeats atomic.Bool
	flakyBeats.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			cl.ClientNodes().Heartbeat(steady.ID, steady.SecretID, nil)
			if flakyBeats.Load() {
				cl.ClientNodes().Heartbeat(flaky.ID, flaky.SecretID, nil)
			}
			select {
			case <-ctx.Done():
			case <-time.After(ttl / 4):
			}
		}
	}()
	defer func() { cancel(); <-hbDone }()

	// one allocation per node: each has room for one
	job := schedJob("web", 2)
	job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 600
	job.TaskGroups[0].Disconnect = &structs.DisconnectStrategy{LostAfter: 3 * time.Second, Replace: true}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var orig *structs.Allocation
	servertest.WaitFor(t, 10*time.Second, "one allocation on each node", func() bool {
		for _, a := range liveAllocs(t, s, job.ID) {
			if a.NodeID == flaky.ID {
				orig = a
			}
		}
		return len(liveAllocs(t, s, job.ID)) == 2 && orig != nil
	})
	// give the steady node room for the replacement
	bigger := schedNode(2)
	bigger.NodeResources.Memory.MemoryMB = 4096
	registerNode(t, cl, bigger)

	nodeStatus := func() string { n, _ := s.State().NodeByID(nil, flaky.ID); return n.Status }
	alloc := func(id string) *structs.Allocation { a, _ := s.State().AllocByID(nil, id); return a }
	replacement := func() *structs.Allocation {
		for _, a := range liveAllocs(t, s, job.ID) {
			if a.PreviousAllocation == orig.ID {
				return a
			}
		}
		return nil
	}

	flakyBeats.Store(false)
	servertest.WaitFor(t, 10*time.Second, "flaky node disconnected, its alloc unknown and replaced", func() bool {
		r := replacement()
		return nodeStatus() == structs.NodeStatusDisconnected && alloc(orig.ID).ClientStatus == structs.AllocClientStatusUnknown &&
			r != nil && r.NodeID == steady.ID
	})
	if a := alloc(orig.ID); a.DesiredStatus != structs.AllocDesiredStatusRun {
		t.Fatalf("unknown alloc stopped: %+v", a)
	}
	repl := replacement()

	// back within the window: original kept, replacement stopped
	flakyBeats.Store(true)
	servertest.WaitFor(t, 10*time.Second, "flaky node back, replacement stopped", func() bool {
		r := alloc(repl.ID)
		return nodeStatus() == structs.NodeStatusReady && r.DesiredStatus == structs.AllocDesiredStatusStop
	})
	if a := alloc(orig.ID); a.TerminalStatus() {
		t.Fatalf("original alloc ended on reconnect: %+v", a)
	}

	// silent past the window: disconnected, then down, the original lost
	flakyBeats.Store(false)
	servertest.WaitFor(t, 10*time.Second, "flaky node disconnected again", func() bool {
		return nodeStatus() == structs.NodeStatusDisconnected
	})
	start := time.Now()
	servertest.WaitFor(t, 15*time.Second, "flaky node down after the window, original lost", func() bool {
		return nodeStatus() == structs.NodeStatusDown && alloc(orig.ID).ClientStatus == structs.AllocClientStatusLost
	})
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("node down %s after disconnecting, before its 3s window", waited)
	}
	if live := liveAllocs(t, s, job.ID); len(live) != 2 {
		t.Fatalf("live after the window = %d, want 2", len(live))
	}
}
