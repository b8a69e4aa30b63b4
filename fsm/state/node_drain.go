package state

import (
	"fmt"

	"github.com/berth-dev/berth/structs"
)

// maxNodeEvents is how many events a node keeps, the oldest dropped
// first, as Nomad does.
const maxNodeEvents = 10

// UpdateNodeDrain starts (strategy non-nil: the node becomes ineligible)
// or ends (nil) a node's drain. Ending it with markEligible makes the node
// eligible again; otherwise its eligibility is left as it is. event, when
// set, is appended to the node's events with index as its CreateIndex.
func (t *Txn) UpdateNodeDrain(index uint64, nodeID string, strategy *structs.DrainStrategy, markEligible bool, event *structs.NodeEvent) error {
	raw, err := t.First(TableNodes, "id", nodeID)
	if err != nil {
		return fmt.Errorf("node lookup: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("node %q: %w", nodeID, ErrNotFound)
	}
	c := *raw.(*structs.Node)
	if strategy != nil {
		s := *strategy
		c.DrainStrategy = &s
		c.Drain = true
		c.SchedulingEligibility = structs.NodeSchedulingIneligible
	} else {
		c.DrainStrategy = nil
		c.Drain = false
		if markEligible {
			c.SchedulingEligibility = structs.NodeSchedulingEligible
		}
	}
	if event != nil {
		e := *event
		e.CreateIndex = index
		events := append([]*structs.NodeEvent(nil), c.Events...)
		events = append(events, &e)
		if len(events) > maxNodeEvents {
			events = events[len(events)-maxNodeEvents:]
		}
		c.Events = events
	}
	c.ModifyIndex = index
	if err := t.Insert(TableNodes, &c); err != nil {
		return fmt.Errorf("node insert: %w", err)
	}
	return t.bumpIndex(TableNodes, index)
}

// UpdateAllocsDesiredTransitions merges desired transitions into
// allocations. Allocations the store does not know (garbage collected
// meanwhile) are skipped.
func (t *Txn) UpdateAllocsDesiredTransitions(index uint64, transitions map[string]*structs.DesiredTransition, updatedAt int64) error {
	changed := false
	for id, tr := range transitions {
		if id == "" || tr == nil {
			return fmt.Errorf("%w: desired transition without alloc ID or transition", ErrInvalidRequest)
		}
		raw, err := t.First(TableAllocs, "id", id)
		if err != nil {
			return fmt.Errorf("alloc lookup: %w", err)
		}
		if raw == nil {
			continue
		}
		c := *raw.(*structs.Allocation)
		c.DesiredTransition.Merge(tr)
		c.ModifyIndex = index
		c.AllocModifyIndex = index
		if updatedAt != 0 {
			c.ModifyTime = updatedAt
		}
		if err := t.Insert(TableAllocs, &c); err != nil {
			return fmt.Errorf("alloc insert: %w", err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return t.bumpIndex(TableAllocs, index)
}
