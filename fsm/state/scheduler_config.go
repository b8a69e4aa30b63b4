package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// TableSchedulerConfig holds the one cluster-wide scheduler configuration.
const TableSchedulerConfig = "scheduler_config"

func schedulerConfigTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableSchedulerConfig,
		Indexes: map[string]*memdb.IndexSchema{
			// a single row: every object has the same (empty) key
			"id": {Name: "id", Unique: true, Indexer: &memdb.ConditionalIndex{
				Conditional: func(any) (bool, error) { return true, nil },
			}},
		},
	}
}

// SchedulerConfig returns the stored scheduler configuration, or the
// default one (with zero indexes) when none was ever set.
func (s *StateStore) SchedulerConfig(ws memdb.WatchSet) (*structs.SchedulerConfiguration, error) {
	txn := s.db.Txn(false)
	watch, raw, err := txn.FirstWatch(TableSchedulerConfig, "id")
	if err != nil {
		return nil, fmt.Errorf("scheduler config lookup: %w", err)
	}
	ws.Add(watch)
	if raw == nil {
		return structs.DefaultSchedulerConfiguration(), nil
	}
	return raw.(*structs.SchedulerConfiguration), nil
}

// SetSchedulerConfig stores the scheduler configuration. With cas it
// applies only if the stored ModifyIndex equals casIndex (0 meaning "never
// set"); otherwise it fails with ErrConflict.
func (t *Txn) SetSchedulerConfig(index uint64, cfg *structs.SchedulerConfiguration, cas bool, casIndex uint64) error {
	if cfg == nil {
		return fmt.Errorf("%w: scheduler config missing", ErrInvalidRequest)
	}
	switch cfg.SchedulerAlgorithm {
	case "", structs.SchedulerAlgorithmBinpack, structs.SchedulerAlgorithmSpread:
	default:
		return fmt.Errorf("%w: unknown scheduler algorithm %q", ErrInvalidRequest, cfg.SchedulerAlgorithm)
	}
	raw, err := t.First(TableSchedulerConfig, "id")
	if err != nil {
		return fmt.Errorf("scheduler config lookup: %w", err)
	}
	var current uint64
	c := *cfg
	if raw != nil {
		old := raw.(*structs.SchedulerConfiguration)
		current = old.ModifyIndex
		c.CreateIndex = old.CreateIndex
	} else {
		c.CreateIndex = index
	}
	if cas && current != casIndex {
		return fmt.Errorf("%w: scheduler config modify index is %d, not %d", ErrConflict, current, casIndex)
	}
	if c.SchedulerAlgorithm == "" {
		c.SchedulerAlgorithm = structs.SchedulerAlgorithmBinpack
	}
	c.ModifyIndex = index
	if err := t.Insert(TableSchedulerConfig, &c); err != nil {
		return fmt.Errorf("scheduler config insert: %w", err)
	}
	return t.bumpIndex(TableSchedulerConfig, index)
}
