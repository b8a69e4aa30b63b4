package server

import (
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// snapshotState is the scheduler's read-only view of a state snapshot.
type snapshotState struct {
	snap  *state.Snapshot
	index uint64
}

var _ scheduler.State = (*snapshotState)(nil)

func newSnapshotState(snap *state.Snapshot) *snapshotState {
	return &snapshotState{snap: snap, index: snap.LatestIndex()}
}

func (s *snapshotState) Nodes() ([]*structs.Node, error) { return s.snap.Nodes(nil, "") }

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
