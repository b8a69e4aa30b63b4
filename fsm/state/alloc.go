package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// AllocByID returns the allocation or nil.
func (s *StateStore) AllocByID(ws memdb.WatchSet, id string) (*structs.Allocation, error) {
	txn := s.db.Txn(false)
	watch, raw, err := txn.FirstWatch(TableAllocs, "id", id)
	if err != nil {
		return nil, fmt.Errorf("alloc lookup: %w", err)
	}
	ws.Add(watch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Allocation), nil
}

// Allocs lists allocations of a namespace ("*" for all) whose ID starts
// with prefix.
func (s *StateStore) Allocs(ws memdb.WatchSet, namespace, prefix string) ([]*structs.Allocation, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(TableAllocs, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("alloc list: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Allocation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		if namespace == structs.AllNamespacesSentinel || a.Namespace == namespace {
			out = append(out, a)
		}
	}
	return out, nil
}

// AllocsByJob lists a job's allocations.
func (s *StateStore) AllocsByJob(ws memdb.WatchSet, namespace, jobID string) ([]*structs.Allocation, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(TableAllocs, "job", namespace, jobID)
	if err != nil {
		return nil, fmt.Errorf("job allocs: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Allocation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		if a.JobID == jobID {
			out = append(out, a)
		}
	}
	return out, nil
}

// AllocsByNode lists the allocations placed on a node.
func (s *StateStore) AllocsByNode(ws memdb.WatchSet, nodeID string) ([]*structs.Allocation, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(TableAllocs, "node", nodeID)
	if err != nil {
		return nil, fmt.Errorf("node allocs: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Allocation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Allocation))
	}
	return out, nil
}

// UpsertAllocs creates or updates allocations and refreshes the status of
// the jobs they belong to.
func (t *Txn) UpsertAllocs(index uint64, allocs []*structs.Allocation) error {
	type jobKey struct{ ns, id string }
	jobs := make(map[jobKey]struct{})
	for _, a := range allocs {
		if a == nil || a.ID == "" {
			return fmt.Errorf("%w: allocation without ID", ErrInvalidRequest)
		}
		c := *a
		raw, err := t.First(TableAllocs, "id", c.ID)
		if err != nil {
			return fmt.Errorf("alloc lookup: %w", err)
		}
		if raw != nil {
			old := raw.(*structs.Allocation)
			c.CreateIndex = old.CreateIndex
			c.AllocModifyIndex = old.AllocModifyIndex
			if c.Job == nil {
				c.Job = old.Job
			}
		} else {
			c.CreateIndex = index
			c.AllocModifyIndex = index
		}
		c.ModifyIndex = index
		if err := t.Insert(TableAllocs, &c); err != nil {
			return fmt.Errorf("alloc insert: %w", err)
		}
		jobs[jobKey{c.Namespace, c.JobID}] = struct{}{}
	}
	if err := t.bumpIndex(TableAllocs, index); err != nil {
		return err
	}
	for k := range jobs {
		if err := t.refreshJobStatus(index, k.ns, k.id); err != nil {
			return err
		}
	}
	return nil
}

// AllocsByEval lists the allocations an evaluation placed. There is no
// index on EvalID: at 100,000 allocations one costs ~40 MB of radix tree for
// a rarely used lookup, so the evaluation's job's allocations are filtered.
func (s *StateStore) AllocsByEval(ws memdb.WatchSet, evalID string) ([]*structs.Allocation, error) {
	eval, err := s.EvalByID(ws, evalID)
	if err != nil || eval == nil {
		return nil, err
	}
	allocs, err := s.AllocsByJob(ws, eval.Namespace, eval.JobID)
	if err != nil {
		return nil, err
	}
	var out []*structs.Allocation
	for _, a := range allocs {
		if a.EvalID == evalID {
			out = append(out, a)
		}
	}
	return out, nil
}

// UpdateAllocsFromClient records what agents report: only ClientStatus,
// ClientDescription, TaskStates and ModifyTime are taken from each
// allocation (ModifyTime falls back to updatedAt). Allocations the store
// does not know (garbage collected meanwhile) are skipped. The status of
// the jobs concerned is refreshed.
func (t *Txn) UpdateAllocsFromClient(index uint64, allocs []*structs.Allocation, updatedAt int64) error {
	jobs := make(map[jobKey]struct{})
	// One copy of each description per batch (agents report the same few).
	descs := make(map[string]string)
	for _, a := range allocs {
		if a == nil || a.ID == "" {
			return fmt.Errorf("%w: allocation update without ID", ErrInvalidRequest)
		}
		raw, err := t.First(TableAllocs, "id", a.ID)
		if err != nil {
			return fmt.Errorf("alloc lookup: %w", err)
		}
		if raw == nil {
			continue
		}
		c := *raw.(*structs.Allocation)
		if a.ClientStatus != "" {
			c.ClientStatus = internStatus(a.ClientStatus)
		}
		if a.ClientDescription != c.ClientDescription {
			d, ok := descs[a.ClientDescription]
			if !ok {
				d = a.ClientDescription
				descs[d] = d
			}
			c.ClientDescription = d
		}
		if a.TaskStates != nil {
			c.TaskStates = a.TaskStates
		}
		c.ModifyTime = a.ModifyTime
		if c.ModifyTime == 0 {
			c.ModifyTime = updatedAt
		}
		c.ModifyIndex = index
		if err := t.Insert(TableAllocs, &c); err != nil {
			return fmt.Errorf("alloc insert: %w", err)
		}
		jobs[jobKey{c.Namespace, c.JobID}] = struct{}{}
	}
	if len(jobs) > 0 {
		if err := t.bumpIndex(TableAllocs, index); err != nil {
			return err
		}
	}
	return t.refreshJobStatuses(index, jobs)
}
