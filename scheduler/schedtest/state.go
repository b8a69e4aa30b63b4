// Package schedtest runs schedulers without a server: an in-memory State
// and a Planner that applies plans to it (checking every node with
// structs.AllocsFit, as the plan applier does) and can be told to refuse
// placements on some nodes to exercise partial commits.
package schedtest

import (
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// State is an in-memory scheduler.State. It is safe for use by one
// scheduler at a time plus the test.
type State struct {
	mu       sync.Mutex
	index    uint64
	nodes    []*structs.Node
	nodePos  map[string]int
	jobs     map[[2]string]*structs.Job
	allocs   map[string]*structs.Allocation
	byJob    map[[2]string][]*structs.Allocation
	jobPos   map[string]int
	byNode   map[string][]*structs.Allocation
	nodeAPos map[string]int
	config   *structs.SchedulerConfiguration
}

var _ scheduler.State = (*State)(nil)

// NewState returns an empty state at index 1.
func NewState() *State {
	return &State{
		index:    1,
		nodePos:  map[string]int{},
		jobs:     map[[2]string]*structs.Job{},
		allocs:   map[string]*structs.Allocation{},
		byJob:    map[[2]string][]*structs.Allocation{},
		jobPos:   map[string]int{},
		byNode:   map[string][]*structs.Allocation{},
		nodeAPos: map[string]int{},
	}
}

func (s *State) bump() uint64 {
	s.index++
	return s.index
}

// UpsertNode adds or replaces a node.
func (s *State) UpsertNode(n *structs.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.ModifyIndex = s.bump()
	if i, ok := s.nodePos[n.ID]; ok {
		s.nodes[i] = n
		return
	}
	n.CreateIndex = n.ModifyIndex
	s.nodePos[n.ID] = len(s.nodes)
	s.nodes = append(s.nodes, n)
}

// DeleteNode removes a node (its allocations stay).
func (s *State) DeleteNode(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.nodePos[id]
	if !ok {
		return
	}
	s.nodes = append(s.nodes[:i], s.nodes[i+1:]...)
	delete(s.nodePos, id)
	for j := i; j < len(s.nodes); j++ {
		s.nodePos[s.nodes[j].ID] = j
	}
	s.bump()
}

// UpsertJob adds or replaces a job, bumping its version when it exists.
func (s *State) UpsertJob(j *structs.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{j.Namespace, j.ID}
	idx := s.bump()
	if old, ok := s.jobs[k]; ok {
		j.Version = old.Version + 1
		j.CreateIndex = old.CreateIndex
	} else {
		j.CreateIndex = idx
	}
	j.ModifyIndex, j.JobModifyIndex = idx, idx
	s.jobs[k] = j
}

// UpsertAllocs adds or replaces allocations as given (tests set them up
// directly: running, failed, on down nodes...).
func (s *State) UpsertAllocs(allocs ...*structs.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.bump()
	for _, a := range allocs {
		s.upsertAlloc(a, idx)
	}
}

func (s *State) upsertAlloc(a *structs.Allocation, idx uint64) {
	a.ModifyIndex = idx
	if old, ok := s.allocs[a.ID]; ok {
		a.CreateIndex = old.CreateIndex
		s.allocs[a.ID] = a
		k := [2]string{old.Namespace, old.JobID}
		s.byJob[k][s.jobPos[a.ID]] = a
		s.byNode[old.NodeID][s.nodeAPos[a.ID]] = a
		return
	}
	if a.CreateIndex == 0 {
		a.CreateIndex = idx
	}
	s.allocs[a.ID] = a
	k := [2]string{a.Namespace, a.JobID}
	s.jobPos[a.ID] = len(s.byJob[k])
	s.byJob[k] = append(s.byJob[k], a)
	s.nodeAPos[a.ID] = len(s.byNode[a.NodeID])
	s.byNode[a.NodeID] = append(s.byNode[a.NodeID], a)
}

// SetSchedulerConfig sets the scheduler configuration.
func (s *State) SetSchedulerConfig(c *structs.SchedulerConfiguration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.config = c
	s.bump()
}

// Nodes implements scheduler.State.
func (s *State) Nodes() ([]*structs.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes, nil
}

// NodeByID implements scheduler.State.
func (s *State) NodeByID(id string) (*structs.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.nodePos[id]; ok {
		return s.nodes[i], nil
	}
	return nil, nil
}

// JobByID implements scheduler.State.
func (s *State) JobByID(ns, id string) (*structs.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[[2]string{ns, id}], nil
}

// AllocsByJob implements scheduler.State.
func (s *State) AllocsByJob(ns, id string) ([]*structs.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*structs.Allocation(nil), s.byJob[[2]string{ns, id}]...), nil
}

// AllocsByNode implements scheduler.State.
func (s *State) AllocsByNode(id string) ([]*structs.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byNode[id], nil
}

// AllocByID implements scheduler.State.
func (s *State) AllocByID(id string) (*structs.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocs[id], nil
}

// SchedulerConfig implements scheduler.State.
func (s *State) SchedulerConfig() (*structs.SchedulerConfiguration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.config, nil
}

// Index implements scheduler.State.
func (s *State) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// LiveAllocs returns the job's allocations that are not terminal.
func (s *State) LiveAllocs(ns, jobID string) []*structs.Allocation {
	all, _ := s.AllocsByJob(ns, jobID)
	var out []*structs.Allocation
	for _, a := range all {
		if !a.TerminalStatus() {
			out = append(out, a)
		}
	}
	return out
}

// IDs returns a deterministic ID source: "00000000-0000-4000-8000-<n>".
func IDs(prefix string) func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("%s%08x-0000-4000-8000-%012x", prefix, 0, n)
	}
}

// Clock returns a fixed clock that tests can move.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
