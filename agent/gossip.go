package agent

import (
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Gossip tags: the agent's own, and those it reads from servers
// (server/gossip.go).
const (
	tagRole     = "role"
	tagID       = "id"
	tagDC       = "dc"
	tagRegion   = "region"
	tagHTTPAddr = "http_addr"
	roleAgent   = "agent"
	roleServer  = "server"
)

// startGossip joins the memberlist pool (when Join is given) and learns
// the servers' HTTP addresses from their tags. Gossip is only a hint for
// finding servers; heartbeats decide whether the node is alive.
func (a *Agent) startGossip() error {
	if a.cfg.GossipPort < 0 || len(a.cfg.Join) == 0 {
		return nil
	}
	meta, err := json.Marshal(map[string]string{
		tagRole: roleAgent, tagID: a.nodeID, tagDC: a.cfg.Datacenter,
		tagRegion: a.cfg.Region, tagHTTPAddr: a.HTTPAddr(),
	})
	if err != nil {
		return fmt.Errorf("encode gossip tags: %w", err)
	}
	var mc *memberlist.Config
	if a.cfg.GossipLocal {
		mc = memberlist.DefaultLocalConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	// Names are unique in the pool: the node name alone may clash with a
	// server's on the same host, and a restarted agent (possibly on
	// another port) must not collide with its own previous incarnation,
	// which the pool may still remember after a crash.
	mc.Name = a.cfg.NodeName + "." + a.nodeID[:8] + "." + newUUID()[:4]
	mc.BindAddr = a.cfg.BindAddr
	mc.BindPort = a.cfg.GossipPort
	mc.AdvertiseAddr = a.cfg.AdvertiseAddr
	mc.AdvertisePort = a.cfg.GossipPort
	d := &gossipDelegate{a: a, meta: meta}
	mc.Delegate = d
	mc.Events = d
	mc.Logger = log.New(&slogWriter{l: a.cfg.Logger.With("component", "gossip")}, "", 0)
	a.gossip, err = memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start gossip: %w", err)
	}
	go a.joinLoop()
	return nil
}

// joinLoop retries joining until a peer answers or the agent stops.
func (a *Agent) joinLoop() {
	b := newBackoff(100*time.Millisecond, 5*time.Second)
	for a.ctx.Err() == nil {
		n, err := a.gossip.Join(a.cfg.Join)
		if n > 0 {
			a.logger.Info("joined gossip pool", "peers_contacted", n)
			return
		}
		a.logger.Warn("gossip join failed, retrying", "join", a.cfg.Join, "error", err)
		sleepCtx(a.ctx, b.next())
	}
}

type gossipDelegate struct {
	a    *Agent
	meta []byte
}

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}
func (d *gossipDelegate) NotifyMsg([]byte)                       {}
func (d *gossipDelegate) GetBroadcasts(int, int) [][]byte        { return nil }
func (d *gossipDelegate) LocalState(bool) []byte                 { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool) {}

func serverAddr(n *memberlist.Node, region string) string {
	tags := map[string]string{}
	if err := json.Unmarshal(n.Meta, &tags); err != nil {
		return ""
	}
	if tags[tagRole] != roleServer || (tags[tagRegion] != "" && tags[tagRegion] != region) {
		return ""
	}
	return tags[tagHTTPAddr]
}

func (d *gossipDelegate) NotifyJoin(n *memberlist.Node) {
	if addr := serverAddr(n, d.a.cfg.Region); addr != "" {
		d.a.servers.merge([]string{addr})
	}
}
func (d *gossipDelegate) NotifyUpdate(n *memberlist.Node) { d.NotifyJoin(n) }
func (d *gossipDelegate) NotifyLeave(n *memberlist.Node) {
	if addr := serverAddr(n, d.a.cfg.Region); addr != "" {
		d.a.servers.remove(addr)
	}
}

// slogWriter adapts memberlist's *log.Logger lines ("[WARN] memberlist: …").
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	switch {
	case strings.Contains(msg, "[ERR]"):
		w.l.Error(msg)
	case strings.Contains(msg, "[WARN]"):
		w.l.Warn(msg)
	case strings.Contains(msg, "[INFO]"):
		w.l.Info(msg)
	default:
		w.l.Debug(msg)
	}
	return len(p), nil
}
