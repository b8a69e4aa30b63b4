package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// heartbeatLoop registers the node and keeps it alive: a heartbeat at
// about half the TTL the servers gave (with jitter, so that many agents
// do not beat in step), failing over between servers, and registering
// again when the servers no longer know the node (404) or its fingerprint
// changed.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	registered := false
	// lostContact is set once a heartbeat fails or the servers forgot the
	// node: they may have marked its allocations unknown or lost meanwhile,
	// so the agent reports every allocation again once it gets through.
	// The agent cannot always tell (its process or machine was suspended,
	// requests were only slow): a heartbeat answer with a Raft index says
	// the servers had to bring the node back to ready, which is as good a
	// sign; and every registration reports too (a restarted agent's node
	// may have been disconnected meanwhile).
	lostContact := false
	var ttl time.Duration
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		if !registered {
			resp, err := a.register(ctx)
			if err != nil {
				switch {
				case ctx.Err() != nil:
				case errors.Is(err, errNoServers):
					a.logger.Debug("no servers known yet (waiting for gossip)")
				default:
					a.logger.Warn("node registration failed", "error", err, "servers", a.servers.list())
				}
				sleepCtx(ctx, backoff.next())
				continue
			}
			backoff.reset()
			registered, ttl = true, resp.HeartbeatTTL
			a.servers.merge(resp.Servers)
			a.net.registered(resp)
			a.registerOnce.Do(func() { close(a.registered) })
			a.logger.Info("node registered", "heartbeat_ttl", ttl)
			a.reportAllAllocs()
			lostContact = false
		}
		select {
		case <-ctx.Done():
			return
		case <-a.reregister:
			registered, lostContact = false, true
			continue
		case <-time.After(heartbeatDelay(ttl)):
		}
		var resp *structs.NodeHeartbeatResponse
		err := a.call(func(c *api.ClientNodes) error {
			var err error
			resp, err = c.Heartbeat(a.nodeID, a.secret, (&api.WriteOptions{}).WithContext(ctx))
			return err
		})
		switch {
		case err == nil:
			ttl = resp.HeartbeatTTL
			a.servers.merge(resp.Servers)
			backoff.reset()
			// Index > 0: the node was not ready (disconnected, down) and
			// this heartbeat brought it back
			if lostContact || resp.Index > 0 {
				a.reportAllAllocs()
				lostContact = false
			}
		case ctx.Err() != nil:
			return
		case api.IsNotFound(err):
			a.logger.Warn("servers do not know this node, registering again")
			registered, lostContact = false, true
		default:
			a.logger.Warn("heartbeat failed", "error", err)
			lostContact = true
			// retry soon, well within the TTL
			ttl = min(ttl, 2*backoff.next())
		}
	}
}

func (a *Agent) register(ctx context.Context) (*structs.NodeHeartbeatResponse, error) {
	node := a.Node()
	var resp *structs.NodeHeartbeatResponse
	err := a.call(func(c *api.ClientNodes) error {
		var err error
		resp, err = c.Register(node, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	return resp, err
}

// heartbeatDelay is TTL/2 minus up to 10% jitter (at least 10ms).
func heartbeatDelay(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return time.Second
	}
	d := ttl / 2
	if j := int64(d / 10); j > 0 {
		d -= time.Duration(rand.Int64N(j))
	}
	return max(d, 10*time.Millisecond)
}

type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else if b.cur < b.max {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// reportAllAllocs queues a status update for every allocation the agent
// runs (after a loss of contact the servers' view may be stale: a
// disconnected node's allocations are "unknown" until it reports again).
func (a *Agent) reportAllAllocs() {
	a.runnersMu.Lock()
	ids := make([]string, 0, len(a.runners))
	for id := range a.runners {
		ids = append(ids, id)
	}
	a.runnersMu.Unlock()
	for _, id := range ids {
		a.updates.changed(id)
	}
	if len(ids) > 0 {
		a.logger.Info("reporting every allocation to the servers", "allocs", len(ids))
	}
}
