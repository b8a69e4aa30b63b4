package scheduler

import (
	"hash/fnv"
	"math/rand/v2"

	"github.com/berth-dev/berth/structs"
)

// schedCtx is the working state of one planning attempt: the snapshot,
// the plan being built, per-node usage kept up to date as the plan grows,
// and caches that live as long as the attempt.
type schedCtx struct {
	cfg     Config
	state   State
	planner Planner
	eval    *structs.Evaluation
	job     *structs.Job
	plan    *structs.Plan
	sconf   *structs.SchedulerConfiguration

	nodes []*structs.Node
	// nodeByID memoizes State.NodeByID (nil for nodes that are gone).
	nodeByID map[string]*structs.Node

	usages map[string]*nodeUsage
	skip   map[string]bool // allocs stopped or preempted by the plan
	m      matcher
	rng    *rand.Rand

	// order walks the nodes in a pseudo-random order seeded by the eval ID:
	// start, then start+stride, ... (stride coprime with len(nodes)).
	orderStart, orderStride, orderPos int

	// props counts, per property target and group ("" for the whole job),
	// the allocations per property value (distinct_property and spread).
	props map[propKey]map[string]int
	// jobAllocs are the live allocations of the job, by node, as the plan
	// stands (for spread and distinct_property counts).
	jobAllocs []*structs.Allocation

	err error
}

type propKey struct {
	target string
	tg     string
}

func newSchedCtx(cfg Config, state State, eval *structs.Evaluation, job *structs.Job) (*schedCtx, error) {
	s := &schedCtx{
		cfg:    cfg,
		state:  state,
		eval:   eval,
		job:    job,
		usages: map[string]*nodeUsage{},
		skip:   map[string]bool{},
	}
	sc, err := state.SchedulerConfig()
	if err != nil {
		return nil, err
	}
	if sc == nil {
		sc = structs.DefaultSchedulerConfiguration()
	}
	s.sconf = sc
	nodes, err := state.Nodes()
	if err != nil {
		return nil, err
	}
	s.nodes = nodes
	s.nodeByID = map[string]*structs.Node{}
	h := fnv.New64a()
	h.Write([]byte(eval.ID))
	seed := h.Sum64()
	s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if n := len(nodes); n > 0 {
		s.orderStart = int(seed % uint64(n))
		s.orderStride = coprimeStride(n, seed>>17)
	}
	s.plan = &structs.Plan{
		EvalID:        eval.ID,
		Priority:      eval.Priority,
		SnapshotIndex: state.Index(),
		Annotations:   &structs.PlanAnnotations{DesiredTGUpdates: map[string]*structs.DesiredUpdates{}},
	}
	if job != nil {
		s.plan.Job = job
		s.plan.AllAtOnce = job.AllAtOnce
		s.plan.Priority = job.Priority
	}
	return s, nil
}

// coprimeStride picks a stride in [1, n) coprime with n so that stepping
// by it visits every node once per cycle.
func coprimeStride(n int, seed uint64) int {
	if n <= 2 {
		return 1
	}
	st := int(seed%uint64(n-1)) + 1
	for gcd(st, n) != 1 {
		st++
		if st >= n {
			st = 1
		}
	}
	return st
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// nextNode returns the next node in the visiting order; the walk wraps.
func (s *schedCtx) nextNode() *structs.Node {
	n := len(s.nodes)
	i := (s.orderStart + s.orderPos*s.orderStride) % n
	s.orderPos++
	if s.orderPos >= n {
		s.orderPos = 0
	}
	return s.nodes[i]
}

// usage returns the node's usage, building it from the state on first use.
func (s *schedCtx) usage(n *structs.Node) *nodeUsage {
	if u, ok := s.usages[n.ID]; ok {
		return u
	}
	allocs, err := s.state.AllocsByNode(n.ID)
	if err != nil && s.err == nil {
		s.err = err
	}
	jobID, ns := "", ""
	if s.job != nil {
		jobID, ns = s.job.ID, s.job.Namespace
	}
	u := newNodeUsage(n, jobID, ns, allocs, s.skip)
	s.usages[n.ID] = u
	return u
}

func (s *schedCtx) jobKey() (string, string) {
	if s.job == nil {
		return s.eval.JobID, s.eval.Namespace
	}
	return s.job.ID, s.job.Namespace
}

// stop adds a stop of a live allocation to the plan.
func (s *schedCtx) stop(a *structs.Allocation, desc, clientStatus string) {
	s.plan.AppendStoppedAlloc(a, desc, clientStatus)
	s.release(a)
}

// preempt adds an eviction to the plan.
func (s *schedCtx) preempt(a *structs.Allocation, by string) {
	s.plan.AppendPreemptedAlloc(a, by)
	s.release(a)
}

func (s *schedCtx) release(a *structs.Allocation) {
	if s.skip[a.ID] {
		return
	}
	s.skip[a.ID] = true
	jobID, ns := s.jobKey()
	if u, ok := s.usages[a.NodeID]; ok {
		u.remove(a, jobID, ns)
	}
	if a.JobID == jobID && a.Namespace == ns {
		s.countProps(a, -1)
	}
}

// place adds a new allocation to the plan.
func (s *schedCtx) place(a *structs.Allocation, n *structs.Node) {
	s.plan.AppendAlloc(a)
	jobID, ns := s.jobKey()
	s.usage(n).add(a, jobID, ns)
	s.countProps(a, +1)
}

func (s *schedCtx) desired(tg string) *structs.DesiredUpdates {
	d := s.plan.Annotations.DesiredTGUpdates[tg]
	if d == nil {
		d = &structs.DesiredUpdates{}
		s.plan.Annotations.DesiredTGUpdates[tg] = d
	}
	return d
}

func (s *schedCtx) now() int64 { return s.cfg.Now().UnixNano() }

// node returns a node by ID, nil when it is not in the state.
func (s *schedCtx) node(id string) *structs.Node {
	if n, ok := s.nodeByID[id]; ok {
		return n
	}
	n, err := s.state.NodeByID(id)
	if err != nil && s.err == nil {
		s.err = err
	}
	s.nodeByID[id] = n
	return n
}
