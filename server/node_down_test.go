package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

// A node that stops heartbeating is marked down, its allocations are
// marked lost and replacements run on the node that is still alive.
func TestNodeDownAllocsLostAndReplaced(t *testing.T) {
	const ttl = 300 * time.Millisecond
	c := servertest.NewCluster(t, 1, servertest.WithConfig(func(_ int, cfg *server.Config) {
		cfg.MinHeartbeatTTL = ttl
		cfg.HeartbeatGrace = ttl / 2
		cfg.FailoverHeartbeatTTL = ttl
	}))
	_, s := c.WaitForLeader(10 * time.Second)
	cl := client(t, s)
	silent, alive := schedNode(1), schedNode(2)
	registerNode(t, cl, silent)
	registerNode(t, cl, alive)

	// keep the second node alive for the whole test
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		for i := 0; i < 1000 && ctx.Err() == nil; i++ {
			cl.ClientNodes().Heartbeat(alive.ID, alive.SecretID, nil)
			select {
			case <-ctx.Done():
			case <-time.After(ttl / 4):
			}
		}
	}()
	defer func() { cancel(); <-hbDone }()

	// both nodes get work while both heartbeat: each has room for 8
	job := schedJob("web", 10)
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var onSilent []string
	servertest.WaitFor(t, 10*time.Second, "10 allocations placed on both nodes", func() bool {
		cl.ClientNodes().Heartbeat(silent.ID, silent.SecretID, nil)
		live := liveAllocs(t, s, job.ID)
		onSilent = onSilent[:0]
		for _, a := range live {
			if a.NodeID == silent.ID {
				onSilent = append(onSilent, a.ID)
			}
		}
		return len(live) == 10 && len(onSilent) >= 2
	})

	// node 1 goes silent: down, its allocations lost, replaced on node 2
	// as far as it has room (8), the rest queued
	servertest.WaitFor(t, 15*time.Second, "silent node marked down", func() bool {
		n, _ := s.State().NodeByID(nil, silent.ID)
		return n != nil && n.Status == structs.NodeStatusDown
	})
	servertest.WaitFor(t, 15*time.Second, "replacements on the live node", func() bool {
		live := liveAllocs(t, s, job.ID)
		if len(live) != 8 {
			return false
		}
		for _, a := range live {
			if a.NodeID != alive.ID {
				return false
			}
		}
		return true
	})
	for _, id := range onSilent {
		a, _ := s.State().AllocByID(nil, id)
		if a == nil || a.ClientStatus != structs.AllocClientStatusLost || a.DesiredStatus != structs.AllocDesiredStatusStop {
			t.Errorf("allocation %s on the down node: %+v, want desired stop and client lost", id, a)
		}
	}
	assertWithinCapacity(t, s)
}
