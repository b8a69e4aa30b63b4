package server

import (
	"sync"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// snapshotState is the scheduler's read-only view of a state snapshot.
type snapshotState struct {
	snap  *state.Snapshot
	index uint64
	nodes *nodeListCache
}

var _ scheduler.State = (*snapshotState)(nil)

// newSnapshotState wraps snap; nodes (may be nil) shares node lists between
// the views of one server.
func newSnapshotState(snap *state.Snapshot, nodes *nodeListCache) *snapshotState {
	return &snapshotState{snap: snap, index: snap.LatestIndex(), nodes: nodes}
}

func (s *snapshotState) Nodes() ([]*structs.Node, error) {
	if s.nodes == nil {
		return s.snap.Nodes(nil, "")
	}
	return s.nodes.get(s.snap)
}

// nodeListCache keeps the last node list read, keyed by the nodes table's
// index: every evaluation lists all nodes, and at thousands of nodes that
// walk cost more than scheduling a small job. A Raft index names one
// content of the table on every server, so a list read at index N is the
// list of any snapshot whose nodes table is at N. The slice is shared and
// read-only, like everything read from the state.
type nodeListCache struct {
	mu    sync.Mutex
	index uint64
	nodes []*structs.Node
}

func (c *nodeListCache) get(snap *state.Snapshot) ([]*structs.Node, error) {
	index := snap.Index(nil, state.TableNodes)
	c.mu.Lock()
	if c.nodes != nil && c.index == index {
		nodes := c.nodes
		c.mu.Unlock()
		return nodes, nil
	}
	c.mu.Unlock()
	nodes, err := snap.Nodes(nil, "")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if index >= c.index {
		c.index, c.nodes = index, nodes
	}
	c.mu.Unlock()
	return nodes, nil
}

func (s *snapshotState) NodeByID(id string) (*structs.Node, error) { return s.snap.NodeByID(nil, id) }

func (s *snapshotState) JobByID(namespace, id string) (*structs.Job, error) {
	return s.snap.JobByID(nil, namespace, id)
}

func (s *snapshotState) AllocsByJob(namespace, jobID string) ([]*structs.Allocation, error) {
	return s.snap.AllocsByJob(nil, namespace, jobID)
}

func (s *snapshotState) AllocsByNode(nodeID string) ([]*structs.Allocation, error) {
	return s.snap.AllocsByNode(nil, nodeID)
}

func (s *snapshotState) AllocByID(id string) (*structs.Allocation, error) {
	return s.snap.AllocByID(nil, id)
}

func (s *snapshotState) SchedulerConfig() (*structs.SchedulerConfiguration, error) {
	return s.snap.SchedulerConfig(nil)
}

func (s *snapshotState) Index() uint64 { return s.index }
