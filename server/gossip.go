package server

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/berth-dev/berth/fsm"
)

// Member statuses, as Nomad reports them.
const (
	memberAlive  = "alive"
	memberFailed = "failed"
	memberLeft   = "left"
)

// Gossip tags every server advertises in its memberlist metadata.
const (
	tagRole       = "role"
	tagID         = "id"
	tagRegion     = "region"
	tagDC         = "dc"
	tagRaftAddr   = "raft_addr"
	tagHTTPAddr   = "http_addr"
	tagFSMVersion = "fsm_version"
	tagExpect     = "expect"
	tagBuild      = "build"
	tagRaftVsn    = "raft_vsn"
	roleServer    = "server"
)

// member is one gossip member as this server last saw it.
type member struct {
	Name   string
	Addr   net.IP
	Port   uint16
	Tags   map[string]string
	Status string
	// JoinedAt is when this server last saw the member become alive.
	JoinedAt         time.Time
	PMin, PMax, PCur uint8
	DMin, DMax, DCur uint8
}

func (m *member) isServer() bool { return m.Tags[tagRole] == roleServer }

func (m *member) fsmVersion() int {
	v, err := strconv.Atoi(m.Tags[tagFSMVersion])
	if err != nil {
		return 1
	}
	return v
}

// memberTable remembers members after they fail or leave, so the API can
// report them and the leader can act on it.
type memberTable struct {
	mu      sync.RWMutex
	members map[string]*member
	// removed records when an operator removed a Raft peer, so the leader
	// does not add it straight back while gossip still thinks it alive (a
	// crash takes gossip a few seconds to notice). A server that rejoins
	// gossip after its removal is added again.
	removed map[string]time.Time
}

func newMemberTable() *memberTable {
	return &memberTable{members: make(map[string]*member), removed: make(map[string]time.Time)}
}

func (t *memberTable) markRemoved(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removed[id] = time.Now()
}

// removedSinceJoin reports whether m was removed from Raft after it last
// joined gossip.
func (t *memberTable) removedSinceJoin(m *member) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	at, ok := t.removed[m.Tags[tagID]]
	return ok && !m.JoinedAt.After(at)
}

func (t *memberTable) set(n *memberlist.Node, status string) {
	tags := map[string]string{}
	if len(n.Meta) > 0 {
		if err := json.Unmarshal(n.Meta, &tags); err != nil {
			tags = map[string]string{}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	joined := time.Now()
	if old, ok := t.members[n.Name]; ok && old.Status == memberAlive && status == memberAlive {
		joined = old.JoinedAt
	}
	t.members[n.Name] = &member{
		Name: n.Name, Addr: n.Addr, Port: n.Port, Tags: tags, Status: status, JoinedAt: joined,
		PMin: n.PMin, PMax: n.PMax, PCur: n.PCur, DMin: n.DMin, DMax: n.DMax, DCur: n.DCur,
	}
}

// list returns a copy of every member, sorted by name.
func (t *memberTable) list() []*member {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*member, 0, len(t.members))
	for _, m := range t.members {
		c := *m
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// serverByID finds a server member by its node ID.
func (t *memberTable) serverByID(id string) *member {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, m := range t.members {
		if m.isServer() && m.Tags[tagID] == id {
			c := *m
			return &c
		}
	}
	return nil
}

// gossipDelegate carries the server's tags and turns membership changes
// into member-table updates and a nudge to the leader.
type gossipDelegate struct {
	s    *Server
	meta []byte
}

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		panic(fmt.Sprintf("gossip metadata of %d bytes exceeds memberlist's limit of %d", len(d.meta), limit))
	}
	return d.meta
}
func (d *gossipDelegate) NotifyMsg([]byte)                           {}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(join bool) []byte                { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *gossipDelegate) NotifyJoin(n *memberlist.Node) {
	d.s.members.set(n, memberAlive)
	d.s.nudgeMembers()
}
func (d *gossipDelegate) NotifyLeave(n *memberlist.Node) {
	status := memberFailed
	if n.State == memberlist.StateLeft {
		status = memberLeft
	}
	d.s.members.set(n, status)
	d.s.nudgeMembers()
}
func (d *gossipDelegate) NotifyUpdate(n *memberlist.Node) {
	d.s.members.set(n, memberAlive)
	d.s.nudgeMembers()
}

func (s *Server) nudgeMembers() {
	select {
	case s.memberCh <- struct{}{}:
	default:
	}
}

func (s *Server) gossipTags() map[string]string {
	return map[string]string{
		tagRole:       roleServer,
		tagID:         s.nodeID,
		tagRegion:     s.config.Region,
		tagDC:         s.config.Datacenter,
		tagRaftAddr:   s.raftAddr,
		tagHTTPAddr:   s.httpAddr,
		tagFSMVersion: strconv.Itoa(fsm.Version),
		tagExpect:     strconv.Itoa(s.config.BootstrapExpect),
		tagBuild:      s.config.Version,
		tagRaftVsn:    "3",
	}
}

func (s *Server) setupGossip() error {
	meta, err := json.Marshal(s.gossipTags())
	if err != nil {
		return fmt.Errorf("encode gossip tags: %w", err)
	}
	var mc *memberlist.Config
	if s.config.GossipLocal {
		mc = memberlist.DefaultLocalConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = s.name
	mc.BindAddr = s.config.BindAddr
	mc.BindPort = s.config.GossipPort
	mc.AdvertiseAddr = s.advertiseIP
	mc.AdvertisePort = s.config.GossipPort
	d := &gossipDelegate{s: s, meta: meta}
	mc.Delegate = d
	mc.Events = d
	mc.Logger = newStdLogger(s.baseLogger.With("component", "gossip"))
	s.gossip, err = memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start gossip on %s: %w", hostPort(mc.BindAddr, s.config.GossipPort), err)
	}
	local := s.gossip.LocalNode()
	s.gossipAddr = hostPort(s.advertiseIP, int(local.Port))
	return nil
}

// joinLoop retries joining until one peer answers or the server stops, so
// servers may start in any order.
func (s *Server) joinLoop(addrs []string) {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := s.gossip.Join(addrs)
		if n > 0 {
			s.logger.Info("joined gossip pool", "peers_contacted", n)
			return
		}
		if attempt == 1 || attempt%20 == 0 {
			s.logger.Warn("gossip join failed, retrying", "addrs", addrs, "error", err)
		}
		select {
		case <-s.shutdownCh:
			return
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

// Join contacts gossip peers now and returns how many answered.
func (s *Server) Join(addrs []string) (int, error) {
	return s.gossip.Join(addrs)
}

// checkPeersSupport refuses to emit a command that some server in the Raft
// configuration does not know: the rolling-upgrade guard.
func (s *Server) checkPeersSupport(t fsm.MessageType) error {
	since, ok := fsm.Since(t)
	if !ok {
		return fmt.Errorf("command type %d is unknown to this server", t)
	}
	if since <= 1 {
		return nil
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	var ids []string
	for _, srv := range f.Configuration().Servers {
		ids = append(ids, string(srv.ID))
	}
	return peersSupport(t.String(), since, ids, s.members.serverByID)
}

// peersSupport checks that every server in ids speaks at least FSM version
// since. A server gossip has never shown is taken to speak version 1, the
// oldest: assuming more could let the leader emit what it cannot apply.
func peersSupport(command string, since int, ids []string, lookup func(id string) *member) error {
	for _, id := range ids {
		v := 1
		if m := lookup(id); m != nil {
			v = m.fsmVersion()
		}
		if v < since {
			return fmt.Errorf("%w: command %s needs FSM version %d but server %s speaks %d; upgrade every server first",
				ErrPeersTooOld, command, since, id, v)
		}
	}
	return nil
}
