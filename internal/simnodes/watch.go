package simnodes

import (
	"context"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// watcher polls the nodes in turn: one blocking query per node at a time.
func (s *Simulator) watcher(ctx context.Context) {
	for {
		var n *simNode
		select {
		case <-ctx.Done():
			return
		case n = <-s.watchQ:
		}
		if !sleep(ctx, time.Until(n.lastPoll.Add(s.cfg.MinPollInterval))) {
			return
		}
		s.poll(ctx, n)
		n.lastPoll = time.Now()
		s.watchQ <- n
	}
}

func (s *Simulator) poll(ctx context.Context, n *simNode) {
	// The servers answer with the highest ModifyIndex of the node's
	// allocations, 0 for a node without any; waiting on index 1 then
	// still blocks until the first allocation arrives.
	q := (&api.QueryOptions{WaitIndex: max(n.index, 1), WaitTime: s.cfg.WatchWait}).WithContext(ctx)
	if !n.polled {
		q.WaitIndex, q.WaitTime = 0, 0 // the first poll answers at once
		n.polled = true
	}
	var allocs []*watchedAlloc
	qm, err := s.client.ClientNodes().AllocationsInto(n.id, n.secret, q, &allocs)
	s.stats.polls.Add(1)
	if err != nil {
		if ctx.Err() == nil {
			s.stats.pollErrors.Add(1)
			s.log.Debug("watch allocations failed", "node_id", n.id, "error", err)
		}
		return
	}
	if qm.LastIndex < n.index {
		n.index = 0 // the servers' index went back: start over
	} else {
		n.index = qm.LastIndex
	}
	updates := s.diff(n, allocs, time.Now())
	if len(updates) == 0 {
		return
	}
	if s.cfg.AckDelay > 0 && !sleep(ctx, s.cfg.AckDelay) {
		return
	}
	select {
	case s.ackQ <- ackItem{node: n, allocs: updates}:
	case <-ctx.Done():
	}
}

// watchedAlloc is what the simulator reads of an allocation: decoding
// whole allocations and their jobs for thousands of nodes would cost the
// benchmark more CPU than the servers it measures.
type watchedAlloc struct {
	ID            string
	NodeID        string
	JobID         string
	Namespace     string
	TaskGroup     string
	DesiredStatus string
	ClientStatus  string
	Job           *struct {
		TaskGroups []*struct {
			Name  string
			Tasks []*struct{ Name string }
		}
	}
}

// diff returns the client updates the node owes for allocs: running for
// new allocations, complete for those the servers stopped. It forgets
// allocations the servers no longer list.
func (s *Simulator) diff(n *simNode, allocs []*watchedAlloc, now time.Time) []*structs.Allocation {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*structs.Allocation
	seen := make(map[string]bool, len(allocs))
	for _, a := range allocs {
		if a == nil {
			continue
		}
		seen[a.ID] = true
		reported, known := n.acked[a.ID]
		if !known {
			s.stats.allocsSeen.Add(1)
		}
		want := ""
		switch {
		case a.DesiredStatus == structs.AllocDesiredStatusRun && (a.ClientStatus == "" || a.ClientStatus == structs.AllocClientStatusPending):
			want = structs.AllocClientStatusRunning
		case a.DesiredStatus != structs.AllocDesiredStatusRun && !clientTerminal(a.ClientStatus):
			want = structs.AllocClientStatusComplete
		}
		if want == "" || reported == want {
			if !known {
				n.acked[a.ID] = a.ClientStatus
			}
			continue
		}
		n.acked[a.ID] = want
		out = append(out, clientUpdate(a, want, now))
	}
	for id := range n.acked {
		if !seen[id] {
			delete(n.acked, id)
		}
	}
	return out
}

func clientTerminal(status string) bool {
	switch status {
	case structs.AllocClientStatusComplete, structs.AllocClientStatusFailed, structs.AllocClientStatusLost:
		return true
	}
	return false
}

// clientUpdate is the trimmed allocation an agent sends: identity, client
// status and task states.
func clientUpdate(a *watchedAlloc, status string, now time.Time) *structs.Allocation {
	u := &structs.Allocation{
		ID:           a.ID,
		NodeID:       a.NodeID,
		JobID:        a.JobID,
		Namespace:    a.Namespace,
		TaskGroup:    a.TaskGroup,
		ClientStatus: status,
		ModifyTime:   now.UnixNano(),
	}
	state, desc := "running", "Tasks are running"
	if status == structs.AllocClientStatusComplete {
		state, desc = "dead", "All tasks have completed"
	}
	u.ClientDescription = desc
	if a.Job != nil {
		for _, tg := range a.Job.TaskGroups {
			if tg == nil || tg.Name != a.TaskGroup {
				continue
			}
			u.TaskStates = make(map[string]*structs.TaskState, len(tg.Tasks))
			for _, t := range tg.Tasks {
				if t == nil {
					continue
				}
				ts := &structs.TaskState{State: state, StartedAt: now}
				if state == "dead" {
					ts.FinishedAt = now
				}
				u.TaskStates[t.Name] = ts
			}
		}
	}
	return u
}

type ackItem struct {
	node   *simNode
	allocs []*structs.Allocation
}

// ackBatch is one update request: the allocations and, for each, its node.
type ackBatch struct {
	secret string
	items  []ackItem
}

func (b *ackBatch) size() int {
	n := 0
	for _, it := range b.items {
		n += len(it.allocs)
	}
	return n
}

// ackBatcher groups updates into requests of up to AckBatch allocations,
// waiting at most AckInterval for a batch to fill.
func (s *Simulator) ackBatcher(ctx context.Context, out chan<- ackBatch) {
	var cur ackBatch
	perNode := map[*simNode]int{} // index in pending, with DistinctSecrets
	var pending []ackBatch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false
	flush := func() bool {
		if cur.size() > 0 {
			pending = append(pending, cur)
		}
		cur = ackBatch{}
		clear(perNode)
		for _, b := range pending {
			select {
			case out <- b:
			case <-ctx.Done():
				return false
			}
		}
		pending = pending[:0]
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-s.ackQ:
			if s.cfg.DistinctSecrets {
				if i, ok := perNode[it.node]; ok {
					pending[i].items = append(pending[i].items, it)
				} else {
					perNode[it.node] = len(pending)
					pending = append(pending, ackBatch{secret: it.node.secret, items: []ackItem{it}})
				}
				if len(pending) >= s.cfg.AckConcurrency*4 {
					if !flush() {
						return
					}
					armed = false
					continue
				}
			} else {
				if cur.secret == "" {
					cur.secret = it.node.secret
				}
				cur.items = append(cur.items, it)
				if cur.size() >= s.cfg.AckBatch {
					if !flush() {
						return
					}
					armed = false
					continue
				}
			}
			if !armed {
				timer.Reset(s.cfg.AckInterval)
				armed = true
			}
		case <-timer.C:
			armed = false
			if !flush() {
				return
			}
		}
	}
}

func (s *Simulator) ackWorker(ctx context.Context, in <-chan ackBatch) {
	w := (&api.WriteOptions{}).WithContext(ctx)
	for {
		var b ackBatch
		select {
		case <-ctx.Done():
			return
		case b = <-in:
		}
		allocs := make([]*structs.Allocation, 0, b.size())
		for _, it := range b.items {
			allocs = append(allocs, it.allocs...)
		}
		s.stats.ackRequests.Add(1)
		_, err := s.client.ClientNodes().UpdateAllocations(b.secret, allocs, w)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if s.stats.ackErrors.Add(1) == 1 {
				s.log.Warn("allocation update failed; will report again", "allocs", len(allocs), "error", err)
			} else {
				s.log.Debug("allocation update failed", "allocs", len(allocs), "error", err)
			}
			// Mark as unreported so that the next poll reports them again.
			for _, it := range b.items {
				it.node.mu.Lock()
				for _, a := range it.allocs {
					if _, ok := it.node.acked[a.ID]; ok {
						it.node.acked[a.ID] = ""
					}
				}
				it.node.mu.Unlock()
			}
			continue
		}
		for _, a := range allocs {
			if a.ClientStatus == structs.AllocClientStatusRunning {
				s.stats.allocsRunning.Add(1)
			} else {
				s.stats.allocsStopped.Add(1)
			}
		}
	}
}
