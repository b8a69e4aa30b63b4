package server

import (
	"context"
	"math/rand/v2"
	"path"
	"sync"
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// heartbeatTimers are the leader's per-node TTL timers. They run only
// while this server leads: a node whose timer fires is marked down, with
// node-update evaluations for the jobs that have work on it, in one entry.
type heartbeatTimers struct {
	mu     sync.Mutex
	active bool
	// ctx ends with the leadership the timers belong to.
	ctx    context.Context
	timers map[string]*heartbeatTimer
}

type heartbeatTimer struct {
	timer *time.Timer
	// deadline guards against a timer that fired while being reset.
	deadline time.Time
}

// startHeartbeatTimers arms a timer for every node that is not down, with
// the failover TTL, so that agents get time to find the new leader.
func (s *Server) startHeartbeatTimers(ctx context.Context) {
	h := &s.heartbeats
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active, h.ctx = true, ctx
	h.timers = make(map[string]*heartbeatTimer)
	nodes, err := s.State().Nodes(nil, "")
	if err != nil {
		s.logger.Error("start heartbeat timers", "error", err)
		return
	}
	ttl := s.config.FailoverHeartbeatTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	for _, n := range nodes {
		if n.Status != structs.NodeStatusDown {
			s.resetHeartbeatTimerLocked(n.ID, ttl)
		}
	}
	s.logger.Info("heartbeat timers started", "nodes", len(h.timers), "ttl", ttl)
}

// stopHeartbeatTimers stops every timer when leadership ends.
func (s *Server) stopHeartbeatTimers() {
	h := &s.heartbeats
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.timers {
		t.timer.Stop()
	}
	h.active, h.ctx, h.timers = false, nil, nil
}

// resetHeartbeatTimer records a heartbeat of a node and returns the TTL
// the agent must heartbeat within: max(MinHeartbeatTTL,
// nodes/MaxHeartbeatsPerSecond) plus up to as much again of jitter, as
// Nomad does. The server waits HeartbeatGrace longer before it gives up.
func (s *Server) resetHeartbeatTimer(nodeID string) time.Duration {
	h := &s.heartbeats
	h.mu.Lock()
	defer h.mu.Unlock()
	ttl := heartbeatTTL(s.config, len(h.timers))
	if h.active {
		grace := s.config.HeartbeatGrace
		if grace < 0 {
			grace = 0
		}
		s.resetHeartbeatTimerLocked(nodeID, ttl+grace)
	}
	return ttl
}

// heartbeatTTL scales the TTL with the number of nodes so that the
// servers see at most MaxHeartbeatsPerSecond heartbeats.
func heartbeatTTL(cfg *Config, nodes int) time.Duration {
	minTTL := cfg.MinHeartbeatTTL
	if minTTL <= 0 {
		minTTL = 10 * time.Second
	}
	rate := cfg.MaxHeartbeatsPerSecond
	if rate <= 0 {
		rate = 50
	}
	ttl := max(minTTL, time.Duration(float64(nodes)/rate*float64(time.Second)))
	return ttl + rand.N(ttl)
}

func (s *Server) resetHeartbeatTimerLocked(nodeID string, d time.Duration) {
	h := &s.heartbeats
	deadline := time.Now().Add(d)
	if t, ok := h.timers[nodeID]; ok {
		t.deadline = deadline
		t.timer.Reset(d)
		return
	}
	t := &heartbeatTimer{deadline: deadline}
	t.timer = time.AfterFunc(d, func() { s.heartbeatExpired(nodeID, t) })
	h.timers[nodeID] = t
}

// heartbeatExpired runs when a node's timer fires.
func (s *Server) heartbeatExpired(nodeID string, t *heartbeatTimer) {
	h := &s.heartbeats
	h.mu.Lock()
	if !h.active || h.timers[nodeID] != t || time.Now().Before(t.deadline) {
		// leadership ended, or a heartbeat arrived meanwhile
		h.mu.Unlock()
		return
	}
	delete(h.timers, nodeID)
	ctx := h.ctx
	h.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if err := s.markNodeDown(nodeID); err != nil {
		s.logger.Warn("mark node down after missed heartbeat", "node_id", nodeID, "error", err)
		return
	}
}

// markNodeDown sets a node down, with a node-update evaluation for every
// job that has non-terminal allocations on it, in one entry.
func (s *Server) markNodeDown(nodeID string) error {
	st := s.State()
	node, err := st.NodeByID(nil, nodeID)
	if err != nil || node == nil || node.Status == structs.NodeStatusDown {
		return err
	}
	now := time.Now().UnixNano()
	// groups with a disconnect window get it first (node_disconnect.go)
	if disconnected, err := s.markNodeDisconnected(st, node, now); disconnected || err != nil {
		return err
	}
	evals, err := nodeEvals(st, node, true, false, now)
	if err != nil {
		return err
	}
	_, _, err = s.raftApply(fsm.NodeUpdateStatusType, &fsm.NodeUpdateStatusCommand{
		NodeID: nodeID, Status: structs.NodeStatusDown, UpdatedAt: now, Evals: evals,
	})
	if err == nil {
		s.logger.Info("node missed its heartbeat and is down", "node_id", nodeID, "evals", len(evals))
	}
	return err
}

// nodeEvals builds the node-update evaluations for a change of node: one
// for every job with non-terminal allocations on it (withAllocs) and one
// for every system and sysbatch job that may run on it (withSystem).
func nodeEvals(st *state.StateStore, node *structs.Node, withAllocs, withSystem bool, now int64) ([]*structs.Evaluation, error) {
	type key struct{ ns, id string }
	seen := make(map[key]bool)
	var evals []*structs.Evaluation
	add := func(job *structs.Job) {
		k := key{job.Namespace, job.ID}
		if seen[k] {
			return
		}
		seen[k] = true
		evals = append(evals, &structs.Evaluation{
			ID:              generateUUID(),
			Namespace:       job.Namespace,
			Priority:        job.Priority,
			Type:            job.Type,
			TriggeredBy:     structs.EvalTriggerNodeUpdate,
			JobID:           job.ID,
			NodeID:          node.ID,
			NodeModifyIndex: node.ModifyIndex,
			Status:          structs.EvalStatusPending,
			CreateTime:      now,
			ModifyTime:      now,
		})
	}
	if withAllocs {
		allocs, err := st.AllocsByNode(nil, node.ID)
		if err != nil {
			return nil, err
		}
		for _, a := range allocs {
			if a.TerminalStatus() || seen[key{a.Namespace, a.JobID}] {
				continue
			}
			job, err := st.JobByID(nil, a.Namespace, a.JobID)
			if err != nil {
				return nil, err
			}
			if job == nil {
				// purged: the alloc's own copy says what kind of job it was
				job = a.Job
			}
			if job != nil {
				add(job)
			}
		}
	}
	if withSystem {
		jobs, err := st.Jobs(nil, structs.AllNamespacesSentinel, "")
		if err != nil {
			return nil, err
		}
		for _, job := range jobs {
			if (job.Type == structs.JobTypeSystem || job.Type == structs.JobTypeSysBatch) &&
				!job.Stop && needsEvaluation(job) && jobMayRunOn(job, node) {
				add(job)
			}
		}
	}
	return evals, nil
}

// jobMayRunOn is the cheap pre-filter for system jobs: datacenter (with
// globs) and node pool. The scheduler does the real feasibility check.
func jobMayRunOn(job *structs.Job, node *structs.Node) bool {
	pool := node.NodePool
	if pool == "" {
		pool = structs.DefaultNodePool
	}
	if job.NodePool != "" && job.NodePool != "all" && job.NodePool != pool {
		return false
	}
	if len(job.Datacenters) == 0 {
		return true
	}
	for _, dc := range job.Datacenters {
		if ok, _ := path.Match(dc, node.Datacenter); ok || dc == node.Datacenter {
			return true
		}
	}
	return false
}
