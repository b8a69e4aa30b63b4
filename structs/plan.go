package structs

// Plan is what a scheduler wants changed for one evaluation: allocations to
// stop (NodeUpdate), to place or update (NodeAllocation) and to preempt, all
// keyed by node ID. The leader's plan applier checks it against the latest
// state and commits what still fits.
type Plan struct {
	EvalID string
	// EvalToken is the broker's delivery token; a plan from a worker that
	// lost its delivery is refused.
	EvalToken string
	Priority  int
	// AllAtOnce plans commit whole or not at all.
	AllAtOnce bool
	// Job is the job version the placements run. Allocations in the plan
	// do not carry it (it would be repeated thousands of times); the FSM
	// attaches it.
	Job             *Job
	NodeUpdate      map[string][]*Allocation
	NodeAllocation  map[string][]*Allocation
	NodePreemptions map[string][]*Allocation
	Annotations     *PlanAnnotations
	// SnapshotIndex is the state index the scheduler planned on.
	SnapshotIndex uint64
}

// IsNoOp reports whether the plan changes nothing.
func (p *Plan) IsNoOp() bool {
	return len(p.NodeUpdate) == 0 && len(p.NodeAllocation) == 0 && len(p.NodePreemptions) == 0
}

// AppendAlloc adds a placement or in-place update on the alloc's node.
func (p *Plan) AppendAlloc(a *Allocation) {
	if p.NodeAllocation == nil {
		p.NodeAllocation = make(map[string][]*Allocation)
	}
	p.NodeAllocation[a.NodeID] = append(p.NodeAllocation[a.NodeID], a)
}

// AppendStoppedAlloc records that an allocation is to stop.
func (p *Plan) AppendStoppedAlloc(a *Allocation, desc, clientStatus string) {
	c := *a
	c.Job = nil
	c.DesiredStatus = AllocDesiredStatusStop
	c.DesiredDescription = desc
	if clientStatus != "" {
		c.ClientStatus = clientStatus
	}
	if p.NodeUpdate == nil {
		p.NodeUpdate = make(map[string][]*Allocation)
	}
	p.NodeUpdate[a.NodeID] = append(p.NodeUpdate[a.NodeID], &c)
}

// AppendPreemptedAlloc records that an allocation is evicted for another.
func (p *Plan) AppendPreemptedAlloc(a *Allocation, preemptingAllocID string) {
	c := *a
	c.Job = nil
	c.DesiredStatus = AllocDesiredStatusEvict
	c.DesiredDescription = "Preempted by alloc ID " + preemptingAllocID
	c.PreemptedByAllocation = preemptingAllocID
	if p.NodePreemptions == nil {
		p.NodePreemptions = make(map[string][]*Allocation)
	}
	p.NodePreemptions[a.NodeID] = append(p.NodePreemptions[a.NodeID], &c)
}

// PlanResult is what the plan applier committed of a plan.
type PlanResult struct {
	NodeUpdate      map[string][]*Allocation
	NodeAllocation  map[string][]*Allocation
	NodePreemptions map[string][]*Allocation
	// RefreshIndex, when non-zero, means part of the plan was refused: the
	// scheduler must refresh its state to at least this index and retry.
	RefreshIndex uint64
	// AllocIndex is the Raft index of the commit.
	AllocIndex uint64
}

// FullCommit reports whether everything the plan asked for was committed,
// and how many placements were asked for and committed.
func (r *PlanResult) FullCommit(p *Plan) (bool, int, int) {
	expected, actual := 0, 0
	for node, allocs := range p.NodeAllocation {
		expected += len(allocs)
		actual += len(r.NodeAllocation[node])
	}
	return expected == actual, expected, actual
}

// PlanAnnotations explain a plan (job plan, the eval's metrics).
type PlanAnnotations struct {
	DesiredTGUpdates map[string]*DesiredUpdates
	PreemptedAllocs  []*AllocListStub
}

// DesiredUpdates counts what the scheduler wants for one task group.
type DesiredUpdates struct {
	Ignore            uint64
	Place             uint64
	Migrate           uint64
	Stop              uint64
	InPlaceUpdate     uint64
	DestructiveUpdate uint64
	Canary            uint64
	Preemptions       uint64
}
