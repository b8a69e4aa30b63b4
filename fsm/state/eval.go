package state

import (
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// EvalByID returns the evaluation or nil.
func (s *StateStore) EvalByID(ws memdb.WatchSet, id string) (*structs.Evaluation, error) {
	txn := s.db.Txn(false)
	watch, raw, err := txn.FirstWatch(TableEvals, "id", id)
	if err != nil {
		return nil, fmt.Errorf("eval lookup: %w", err)
	}
	ws.Add(watch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Evaluation), nil
}

// Evals lists evaluations of a namespace ("*" for all) whose ID starts with
// prefix.
func (s *StateStore) Evals(ws memdb.WatchSet, namespace, prefix string) ([]*structs.Evaluation, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(TableEvals, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("eval list: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Evaluation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*structs.Evaluation)
		if namespace == structs.AllNamespacesSentinel || e.Namespace == namespace {
			out = append(out, e)
		}
	}
	return out, nil
}

// EvalsByJob lists a job's evaluations.
func (s *StateStore) EvalsByJob(ws memdb.WatchSet, namespace, jobID string) ([]*structs.Evaluation, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(TableEvals, "job", namespace, jobID)
	if err != nil {
		return nil, fmt.Errorf("job evals: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Evaluation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*structs.Evaluation)
		// the compound index matches job IDs by prefix; keep exact matches
		if e.JobID == jobID {
			out = append(out, e)
		}
	}
	return out, nil
}

// UpsertEvals creates or updates evaluations, and the status of the jobs
// they belong to (a job is pending while an evaluation of it is).
func (t *Txn) UpsertEvals(index uint64, evals []*structs.Evaluation) error {
	jobs := make(map[jobKey]struct{}, 1)
	for _, e := range evals {
		if e == nil || strings.TrimSpace(e.ID) == "" {
			return fmt.Errorf("%w: evaluation without ID", ErrInvalidRequest)
		}
		e = e.Copy()
		raw, err := t.First(TableEvals, "id", e.ID)
		if err != nil {
			return fmt.Errorf("eval lookup: %w", err)
		}
		if raw != nil {
			e.CreateIndex = raw.(*structs.Evaluation).CreateIndex
		} else {
			e.CreateIndex = index
		}
		e.ModifyIndex = index
		if err := t.Insert(TableEvals, e); err != nil {
			return fmt.Errorf("eval insert: %w", err)
		}
		jobs[jobKey{e.Namespace, e.JobID}] = struct{}{}
	}
	if err := t.bumpIndex(TableEvals, index); err != nil {
		return err
	}
	return t.refreshJobStatuses(index, jobs)
}

// DeleteEvals removes evaluations (garbage collection).
func (t *Txn) DeleteEvals(index uint64, ids []string) error {
	for _, id := range ids {
		if _, err := t.DeleteAll(TableEvals, "id", id); err != nil {
			return fmt.Errorf("eval delete: %w", err)
		}
	}
	return t.bumpIndex(TableEvals, index)
}
