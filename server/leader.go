package server

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// monitorLeadership runs the leader's duties while this server leads.
func (s *Server) monitorLeadership() {
	var stopLeading func()
	defer func() {
		if stopLeading != nil {
			stopLeading()
		}
	}()
	for {
		select {
		case <-s.shutdownCh:
			return
		case isLeader := <-s.raftNotifyCh:
			switch {
			case isLeader && stopLeading == nil:
				stopLeading = s.startLeading()
			case !isLeader && stopLeading != nil:
				s.logger.Info("lost leadership")
				stopLeading()
				stopLeading = nil
			}
		}
	}
}

// startLeading starts the leader loop and returns the function that stops
// it and waits for it to end.
func (s *Server) startLeading() func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.leaderLoop(ctx) }()
	return func() {
		cancel()
		<-done
		s.leaderReady.Store(false)
	}
}

// leaderLoop catches up with the log, then reconciles gossip members with
// the Raft configuration until leadership ends.
func (s *Server) leaderLoop(ctx context.Context) {
	s.logger.Info("gained leadership, catching up")
	for {
		// The barrier makes every entry committed by earlier leaders
		// visible in our FSM before we serve reads as leader.
		err := s.raft.Barrier(s.config.ApplyTimeout).Error()
		if err == nil {
			break
		}
		s.logger.Warn("leader barrier failed", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.leaderReady.Store(true)
	s.logger.Info("leader ready")
	s.startHeartbeatTimers(ctx)
	defer s.stopHeartbeatTimers()

	// Scheduling (eval broker, blocked evals, plan applier, workers) runs
	// while this server leads; see worker.go.
	stopScheduling := s.startScheduling(ctx)
	defer stopScheduling()
	// The node drainer migrates work off draining nodes (drainer.go).
	stopDrainer := s.startDrainer(ctx)
	defer stopDrainer()

	interval := s.config.ReconcileInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		s.reconcilePeers()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.memberCh:
		}
	}
}

// reconcilePeers adds alive servers missing from the Raft configuration and
// removes servers that left gracefully. Failed servers stay voters until an
// operator removes them (berth operator raft remove-peer): a crash must not
// shrink the quorum by itself.
func (s *Server) reconcilePeers() {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		s.logger.Warn("read raft configuration", "error", err)
		return
	}
	inConfig := make(map[raft.ServerID]raft.ServerAddress)
	for _, srv := range f.Configuration().Servers {
		inConfig[srv.ID] = srv.Address
	}
	members := s.members.list()
	aliveIDs := make(map[string]bool)
	for _, m := range members {
		if m.isServer() && m.Status == memberAlive {
			aliveIDs[m.Tags[tagID]] = true
		}
	}
	for _, m := range members {
		if !m.isServer() || m.Tags[tagRegion] != s.config.Region {
			continue
		}
		id := raft.ServerID(m.Tags[tagID])
		addr := raft.ServerAddress(m.Tags[tagRaftAddr])
		if id == "" || addr == "" {
			continue
		}
		switch m.Status {
		case memberAlive:
			if have, ok := inConfig[id]; ok && have == addr {
				continue
			}
			if s.members.removedSinceJoin(m) {
				continue
			}
			// A server that lost its data dir comes back with a new ID at
			// the old address: the old entry can never answer again.
			for oldID, oldAddr := range inConfig {
				if oldAddr == addr && oldID != id && !aliveIDs[string(oldID)] {
					s.logger.Info("removing stale raft peer at a reused address", "peer_id", oldID, "address", oldAddr)
					if err := s.raft.RemoveServer(oldID, 0, 0).Error(); err != nil {
						s.logger.Warn("remove stale raft peer", "peer_id", oldID, "error", err)
						return
					}
				}
			}
			s.logger.Info("adding raft peer", "peer", m.Name, "peer_id", id, "address", addr)
			if err := s.raft.AddVoter(id, addr, 0, 0).Error(); err != nil {
				s.logger.Warn("add raft peer", "peer_id", id, "error", err)
			}
		case memberLeft:
			if _, ok := inConfig[id]; ok && string(id) != s.nodeID {
				s.logger.Info("removing raft peer that left", "peer", m.Name, "peer_id", id)
				if err := s.raft.RemoveServer(id, 0, 0).Error(); err != nil {
					s.logger.Warn("remove raft peer", "peer_id", id, "error", err)
				}
			}
		}
	}
}
