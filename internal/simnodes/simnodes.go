// Package simnodes simulates a fleet of berth client nodes through the
// servers' real /v1/client HTTP endpoints: it registers thousands of
// synthetic nodes, heartbeats each within its TTL, watches each node's
// allocations with blocking queries and acknowledges new allocations as
// running (and stopped ones as complete), in batches. Nothing runs: it is
// the control-plane load of a fleet, for benchmarks and scale tests.
//
// Resources are bounded whatever the fleet size: a fixed number of
// goroutines for registration, heartbeats, watching and acknowledging,
// one shared keep-alive HTTP transport with a bounded connection pool, and
// a few small fields per node.
package simnodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// Config configures a Simulator. Zero values get the defaults noted.
type Config struct {
	// Address is the server's HTTP address. A Client, if set, is used
	// instead; it should have a connection pool large enough for
	// Watchers+HeartbeatConcurrency+AckConcurrency+RegisterConcurrency.
	Address string
	Client  *api.Client

	// Nodes is the fleet size (required).
	Nodes int
	// Datacenters the nodes spread over round-robin (dc1, dc2, dc3).
	Datacenters []string
	// Classes are node classes, assigned round-robin within a datacenter
	// (general, compute, memory).
	Classes []string
	// Racks is how many distinct values meta.rack takes (20).
	Racks int
	// Seed makes node IDs reproducible (and distinct per seed).
	Seed uint64

	// RegisterConcurrency bounds registrations in flight (32).
	RegisterConcurrency int
	// HeartbeatConcurrency bounds heartbeats in flight (16).
	HeartbeatConcurrency int
	// Watchers is how many allocation long-polls run at once (512, at
	// most Nodes), each holding one keep-alive connection; the nodes take
	// turns, so a node notices a new allocation within about
	// Nodes/Watchers*WatchWait.
	Watchers int
	// WatchWait is the wait of each long-poll (2s).
	WatchWait time.Duration
	// MinPollInterval is the least time between two polls of one node
	// (500ms), which bounds the poll rate when the server answers at once.
	MinPollInterval time.Duration
	// AckBatch is how many allocation updates one request carries at most
	// (512); AckInterval how long an update may wait for a batch (25ms);
	// AckConcurrency how many update requests may be in flight (4).
	AckBatch       int
	AckInterval    time.Duration
	AckConcurrency int
	// DistinctSecrets gives every node its own SecretID, as real agents
	// have; each node's updates then go in their own requests, since the
	// servers check that every allocation of an update is on a node of
	// the request's secret. By default the fleet shares one secret (the
	// servers allow it for simulators) so that updates of many nodes
	// share one request and one Raft entry.
	DistinctSecrets bool
	// RegisterReady registers nodes as ready at once instead of
	// initializing-then-ready through the first heartbeat: half the Raft
	// writes when bringing up a big fleet.
	RegisterReady bool
	// AckDelay is how long a new allocation "takes to start" before it
	// is reported running (0).
	AckDelay time.Duration

	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Nodes <= 0 {
		return errors.New("simnodes: Nodes must be positive")
	}
	if c.Client == nil && c.Address == "" {
		return errors.New("simnodes: an Address or a Client is required")
	}
	if len(c.Datacenters) == 0 {
		c.Datacenters = []string{"dc1", "dc2", "dc3"}
	}
	if c.Classes == nil {
		c.Classes = []string{"general", "compute", "memory"}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Racks, 20)
	def(&c.RegisterConcurrency, 32)
	def(&c.HeartbeatConcurrency, 16)
	def(&c.Watchers, 512)
	c.Watchers = min(c.Watchers, c.Nodes)
	defd(&c.WatchWait, 2*time.Second)
	defd(&c.MinPollInterval, 500*time.Millisecond)
	def(&c.AckBatch, 512)
	defd(&c.AckInterval, 25*time.Millisecond)
	def(&c.AckConcurrency, 4)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats counts what the simulator did.
type Stats struct {
	Registered      int64
	Ready           int64
	ReRegistrations int64
	Heartbeats      int64
	HeartbeatErrors int64
	Polls           int64
	PollErrors      int64
	AllocsSeen      int64 // distinct allocations seen on their node
	AllocsRunning   int64 // reported running
	AllocsStopped   int64 // reported complete after the server stopped them
	AckRequests     int64
	AckErrors       int64
}

type counters struct {
	registered, ready, reRegistrations       atomic.Int64
	heartbeats, heartbeatErrors              atomic.Int64
	polls, pollErrors                        atomic.Int64
	allocsSeen, allocsRunning, allocsStopped atomic.Int64
	ackRequests, ackErrors                   atomic.Int64
}

// simNode is what the simulator keeps per node: a few words. The full
// node is rebuilt from (seed, index) when it must be registered again.
type simNode struct {
	i      int
	id     string
	secret string

	// Owned by the one watcher polling the node at a time.
	index    uint64
	lastPoll time.Time
	polled   bool

	mu sync.Mutex
	// acked maps the node's allocations to the client status reported
	// (or being reported) for them.
	acked map[string]string
	ready bool
}

// Simulator is a running fleet of simulated nodes.
type Simulator struct {
	cfg    Config
	client *api.Client
	log    *slog.Logger
	nodes  []*simNode
	stats  counters
	// sharedSecret is the fleet's one SecretID, unless DistinctSecrets.
	sharedSecret string

	readyCh   chan struct{}
	readyOnce sync.Once

	// watchQ holds every registered node not being polled right now.
	watchQ chan *simNode
	// hbQ is the heartbeat schedule.
	hbMu   sync.Mutex
	hbHeap hbHeap
	hbWake chan struct{}
	// ackQ carries allocation updates to the batcher.
	ackQ chan ackItem
}

// New prepares a simulator; Run starts it.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Simulator{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "simnodes"),
		readyCh: make(chan struct{}),
		watchQ:  make(chan *simNode, cfg.Nodes),
		hbWake:  make(chan struct{}, 1),
		ackQ:    make(chan ackItem, 4*cfg.AckBatch),
	}
	s.client = cfg.Client
	if s.client == nil {
		pool := cfg.Watchers + cfg.HeartbeatConcurrency + cfg.AckConcurrency + cfg.RegisterConcurrency + 8
		c, err := api.NewClient(&api.Config{Address: cfg.Address, HTTPClient: api.NewPooledHTTPClient(pool)})
		if err != nil {
			return nil, fmt.Errorf("simnodes: %w", err)
		}
		s.client = c
	}
	if !cfg.DistinctSecrets {
		s.sharedSecret = newID(rand.New(rand.NewPCG(cfg.Seed, ^uint64(0))))
	}
	s.nodes = make([]*simNode, cfg.Nodes)
	for i := range s.nodes {
		n := s.build(i, time.Time{})
		s.nodes[i] = &simNode{i: i, id: n.ID, secret: n.SecretID, acked: map[string]string{}}
	}
	return s, nil
}

// build returns node i; its IDs depend only on the seed and i.
func (s *Simulator) build(i int, now time.Time) *structs.Node {
	r := rand.New(rand.NewPCG(s.cfg.Seed, uint64(i)))
	n := BuildNode(i, r, s.cfg.Datacenters, s.cfg.Classes, s.cfg.Racks, now)
	if s.sharedSecret != "" {
		n.SecretID = s.sharedSecret
	}
	if s.cfg.RegisterReady {
		n.Status = structs.NodeStatusReady
	}
	return n
}

// NodeIDs returns the IDs of the simulated nodes.
func (s *Simulator) NodeIDs() []string {
	ids := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		ids[i] = n.id
	}
	return ids
}

// Ready is closed once every node has registered and heartbeated
// successfully (so the servers see it ready).
func (s *Simulator) Ready() <-chan struct{} { return s.readyCh }

// Stats returns the counters so far.
func (s *Simulator) Stats() Stats {
	c := &s.stats
	return Stats{
		Registered: c.registered.Load(), Ready: c.ready.Load(), ReRegistrations: c.reRegistrations.Load(),
		Heartbeats: c.heartbeats.Load(), HeartbeatErrors: c.heartbeatErrors.Load(),
		Polls: c.polls.Load(), PollErrors: c.pollErrors.Load(),
		AllocsSeen: c.allocsSeen.Load(), AllocsRunning: c.allocsRunning.Load(), AllocsStopped: c.allocsStopped.Load(),
		AckRequests: c.ackRequests.Load(), AckErrors: c.ackErrors.Load(),
	}
}

// Run registers the fleet and keeps it alive until ctx is cancelled; then
// it stops every goroutine it started and returns nil. It returns an error
// early if the fleet cannot be registered.
func (s *Simulator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	goLoop := func(n int, fn func(context.Context)) {
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); fn(ctx) }()
		}
	}
	hbWork := make(chan *simNode)
	ackWork := make(chan ackBatch)
	goLoop(1, func(ctx context.Context) { s.heartbeatScheduler(ctx, hbWork) })
	goLoop(s.cfg.HeartbeatConcurrency, func(ctx context.Context) { s.heartbeatWorker(ctx, hbWork) })
	goLoop(s.cfg.Watchers, s.watcher)
	goLoop(1, func(ctx context.Context) { s.ackBatcher(ctx, ackWork) })
	goLoop(s.cfg.AckConcurrency, func(ctx context.Context) { s.ackWorker(ctx, ackWork) })

	err := s.registerAll(ctx)
	if err != nil {
		cancel()
	} else {
		<-ctx.Done()
	}
	wg.Wait()
	return err
}

// registerAll registers every node and sends its first heartbeat, with
// RegisterConcurrency requests in flight.
func (s *Simulator) registerAll(ctx context.Context) error {
	work := make(chan *simNode)
	errCh := make(chan error, 1)
	var wg sync.WaitGroup
	for range s.cfg.RegisterConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				if err := s.register(ctx, n); err != nil {
					select {
					case errCh <- err:
					default:
					}
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, n := range s.nodes {
		select {
		case work <- n:
		case err = <-errCh:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errCh:
		default:
		}
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Retry bounds: a registration or first heartbeat is tried this many
// times before the simulator gives up.
const (
	maxAttempts  = 8
	retryBackoff = 200 * time.Millisecond
)

// register registers node n and heartbeats it once so it becomes ready.
func (s *Simulator) register(ctx context.Context, n *simNode) error {
	w := (&api.WriteOptions{}).WithContext(ctx)
	var ttl time.Duration
	for attempt := 1; ; attempt++ {
		resp, err := s.client.ClientNodes().Register(s.build(n.i, time.Now()), w)
		if err == nil {
			ttl = resp.HeartbeatTTL
			if hb, err := s.client.ClientNodes().Heartbeat(n.id, n.secret, w); err == nil {
				s.stats.heartbeats.Add(1)
				if hb.HeartbeatTTL > 0 {
					ttl = hb.HeartbeatTTL
				}
				break
			} else {
				err = fmt.Errorf("first heartbeat of node %s: %w", n.id, err)
			}
		} else {
			err = fmt.Errorf("register node %s: %w", n.id, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A missing endpoint or a refused request will not get better.
		if api.IsNotFound(err) || api.IsBadRequest(err) || api.IsForbidden(err) || attempt >= maxAttempts {
			return err
		}
		s.log.Debug("registration failed, retrying", "node_id", n.id, "attempt", attempt, "error", err)
		if !sleep(ctx, retryBackoff*time.Duration(attempt)) {
			return ctx.Err()
		}
	}
	s.stats.registered.Add(1)
	n.mu.Lock()
	wasReady := n.ready
	n.ready = true
	n.mu.Unlock()
	if !wasReady {
		if s.stats.ready.Add(1) == int64(len(s.nodes)) {
			s.readyOnce.Do(func() { close(s.readyCh) })
		}
	}
	s.schedule(n, time.Now().Add(nextHeartbeat(ttl, n.i)))
	s.watchQ <- n // never blocks: capacity is the fleet size, each node once
	return nil
}

// nextHeartbeat is when to heartbeat after a TTL: between half and three
// quarters of it, spread over the nodes so they do not beat in step.
func nextHeartbeat(ttl time.Duration, i int) time.Duration {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	spread := ttl / 4
	return ttl/2 + time.Duration(uint64(i)*2654435761%1000)*spread/1000
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
