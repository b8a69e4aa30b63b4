package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// NodeByID returns the node or nil.
func (s *StateStore) NodeByID(ws memdb.WatchSet, id string) (*structs.Node, error) {
	txn := s.db.Txn(false)
	watch, raw, err := txn.FirstWatch(TableNodes, "id", id)
	if err != nil {
		return nil, fmt.Errorf("node lookup: %w", err)
	}
	ws.Add(watch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Node), nil
}

// Nodes lists nodes whose ID starts with prefix.
func (s *StateStore) Nodes(ws memdb.WatchSet, prefix string) ([]*structs.Node, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(TableNodes, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("node list: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Node
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Node))
	}
	return out, nil
}

// UpsertNode registers a node or updates its registration.
func (t *Txn) UpsertNode(index uint64, node *structs.Node) error {
	if node.ID == "" {
		return fmt.Errorf("%w: node without ID", ErrInvalidRequest)
	}
	c := *node
	raw, err := t.First(TableNodes, "id", c.ID)
	if err != nil {
		return fmt.Errorf("node lookup: %w", err)
	}
	if raw != nil {
		old := raw.(*structs.Node)
		c.CreateIndex = old.CreateIndex
		// drain and eligibility belong to the operator, not the agent
		c.Drain, c.DrainStrategy = old.Drain, old.DrainStrategy
		c.SchedulingEligibility = old.SchedulingEligibility
	} else {
		c.CreateIndex = index
		if c.SchedulingEligibility == "" {
			c.SchedulingEligibility = structs.NodeSchedulingEligible
		}
	}
	c.ModifyIndex = index
	if err := t.Insert(TableNodes, &c); err != nil {
		return fmt.Errorf("node insert: %w", err)
	}
	return t.bumpIndex(TableNodes, index)
}

// UpdateNodeStatus sets a node's status at the time the command carries.
func (t *Txn) UpdateNodeStatus(index uint64, nodeID, status string, updatedAt int64) error {
	raw, err := t.First(TableNodes, "id", nodeID)
	if err != nil {
		return fmt.Errorf("node lookup: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("node %q: %w", nodeID, ErrNotFound)
	}
	c := *raw.(*structs.Node)
	c.Status = status
	c.StatusUpdatedAt = updatedAt
	c.ModifyIndex = index
	if err := t.Insert(TableNodes, &c); err != nil {
		return fmt.Errorf("node insert: %w", err)
	}
	return t.bumpIndex(TableNodes, index)
}

// DeleteNodes removes nodes.
func (t *Txn) DeleteNodes(index uint64, ids []string) error {
	for _, id := range ids {
		n, err := t.DeleteAll(TableNodes, "id", id)
		if err != nil {
			return fmt.Errorf("node delete: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("node %q: %w", id, ErrNotFound)
		}
	}
	return t.bumpIndex(TableNodes, index)
}

// UpdateNodeEligibility sets whether the scheduler may place work on a
// node. A draining node cannot be made eligible.
func (t *Txn) UpdateNodeEligibility(index uint64, nodeID, eligibility string) error {
	if eligibility != structs.NodeSchedulingEligible && eligibility != structs.NodeSchedulingIneligible {
		return fmt.Errorf("%w: unknown scheduling eligibility %q", ErrInvalidRequest, eligibility)
	}
	raw, err := t.First(TableNodes, "id", nodeID)
	if err != nil {
		return fmt.Errorf("node lookup: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("node %q: %w", nodeID, ErrNotFound)
	}
	c := *raw.(*structs.Node)
	if eligibility == structs.NodeSchedulingEligible && (c.Drain || c.DrainStrategy != nil) {
		return fmt.Errorf("%w: node %s is draining and cannot be made eligible", ErrInvalidRequest, nodeID)
	}
	c.SchedulingEligibility = eligibility
	c.ModifyIndex = index
	if err := t.Insert(TableNodes, &c); err != nil {
		return fmt.Errorf("node insert: %w", err)
	}
	return t.bumpIndex(TableNodes, index)
}
