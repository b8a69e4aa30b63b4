package simnodes

import (
	"container/heap"
	"context"
	"time"

	"github.com/berth-dev/berth/api"
)

// Heartbeats: a heap orders every node by when its next heartbeat is due,
// and a fixed pool of workers sends them.

type hbEntry struct {
	due  time.Time
	node *simNode
}

type hbHeap []hbEntry

func (h hbHeap) Len() int           { return len(h) }
func (h hbHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h hbHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hbHeap) Push(x any)        { *h = append(*h, x.(hbEntry)) }
func (h *hbHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// schedule puts a heartbeat of n at due.
func (s *Simulator) schedule(n *simNode, due time.Time) {
	s.hbMu.Lock()
	heap.Push(&s.hbHeap, hbEntry{due: due, node: n})
	first := s.hbHeap[0].node == n
	s.hbMu.Unlock()
	if first {
		select {
		case s.hbWake <- struct{}{}:
		default:
		}
	}
}

// heartbeatScheduler hands due heartbeats to the workers.
func (s *Simulator) heartbeatScheduler(ctx context.Context, work chan<- *simNode) {
	const maxSleep = time.Second
	for {
		s.hbMu.Lock()
		wait := maxSleep
		var due *simNode
		if len(s.hbHeap) > 0 {
			if d := time.Until(s.hbHeap[0].due); d <= 0 {
				due = heap.Pop(&s.hbHeap).(hbEntry).node
			} else {
				wait = min(d, maxSleep)
			}
		}
		s.hbMu.Unlock()
		if due != nil {
			select {
			case work <- due:
				continue
			case <-ctx.Done():
				return
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.hbWake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Simulator) heartbeatWorker(ctx context.Context, work <-chan *simNode) {
	w := (&api.WriteOptions{}).WithContext(ctx)
	for {
		var n *simNode
		select {
		case <-ctx.Done():
			return
		case n = <-work:
		}
		resp, err := s.client.ClientNodes().Heartbeat(n.id, n.secret, w)
		switch {
		case err == nil:
			s.stats.heartbeats.Add(1)
			s.schedule(n, time.Now().Add(nextHeartbeat(resp.HeartbeatTTL, n.i)))
		case ctx.Err() != nil:
			return
		case api.IsNotFound(err):
			// The servers forgot the node (state reset, GC): register again.
			s.stats.heartbeatErrors.Add(1)
			s.log.Warn("node unknown to the servers, registering again", "node_id", n.id)
			if _, err := s.client.ClientNodes().Register(s.build(n.i, time.Now()), w); err == nil {
				s.stats.reRegistrations.Add(1)
			}
			s.schedule(n, time.Now().Add(time.Second))
		default:
			s.stats.heartbeatErrors.Add(1)
			s.log.Debug("heartbeat failed", "node_id", n.id, "error", err)
			s.schedule(n, time.Now().Add(time.Second))
		}
	}
}
