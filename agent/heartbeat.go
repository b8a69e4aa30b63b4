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
		}
		select {
		case <-ctx.Done():
			return
		case <-a.reregister:
			registered = false
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
		case ctx.Err() != nil:
			return
		case api.IsNotFound(err):
			a.logger.Warn("servers do not know this node, registering again")
			registered = false
		default:
			a.logger.Warn("heartbeat failed", "error", err)
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
