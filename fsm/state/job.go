package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// JobByID returns the job or nil.
func (s *StateStore) JobByID(ws memdb.WatchSet, namespace, id string) (*structs.Job, error) {
	txn := s.db.Txn(false)
	watch, raw, err := txn.FirstWatch(TableJobs, "id", namespace, id)
	if err != nil {
		return nil, fmt.Errorf("job lookup: %w", err)
	}
	ws.Add(watch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Job), nil
}

// Jobs lists the jobs of a namespace ("*" for all) whose ID starts with
// prefix, sorted by namespace then ID.
func (s *StateStore) Jobs(ws memdb.WatchSet, namespace, prefix string) ([]*structs.Job, error) {
	txn := s.db.Txn(false)
	var it memdb.ResultIterator
	var err error
	if namespace == structs.AllNamespacesSentinel {
		it, err = txn.Get(TableJobs, "id")
	} else {
		it, err = txn.Get(TableJobs, "id_prefix", namespace, prefix)
	}
	if err != nil {
		return nil, fmt.Errorf("job list: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Job
	for raw := it.Next(); raw != nil; raw = it.Next() {
		j := raw.(*structs.Job)
		if strings.HasPrefix(j.ID, prefix) {
			out = append(out, j)
		}
	}
	return out, nil
}

// JobSummary counts the job's allocations per group and client status.
func (s *StateStore) JobSummary(ws memdb.WatchSet, job *structs.Job) (*structs.JobSummary, error) {
	allocs, err := s.AllocsByJob(ws, job.Namespace, job.ID)
	if err != nil {
		return nil, err
	}
	sum := &structs.JobSummary{
		JobID:       job.ID,
		Namespace:   job.Namespace,
		Summary:     make(map[string]structs.TaskGroupSummary, len(job.TaskGroups)),
		CreateIndex: job.CreateIndex,
		ModifyIndex: job.ModifyIndex,
	}
	for _, tg := range job.TaskGroups {
		if tg != nil {
			sum.Summary[tg.Name] = structs.TaskGroupSummary{}
		}
	}
	for _, a := range allocs {
		tgs := sum.Summary[a.TaskGroup]
		switch a.ClientStatus {
		case structs.AllocClientStatusPending:
			tgs.Starting++
		case structs.AllocClientStatusRunning:
			tgs.Running++
		case structs.AllocClientStatusComplete:
			tgs.Complete++
		case structs.AllocClientStatusFailed:
			tgs.Failed++
		case structs.AllocClientStatusLost:
			tgs.Lost++
		case structs.AllocClientStatusUnknown:
			tgs.Unknown++
		}
		sum.Summary[a.TaskGroup] = tgs
		if a.ModifyIndex > sum.ModifyIndex {
			sum.ModifyIndex = a.ModifyIndex
		}
	}
	// Queued is what the newest processed evaluation could not place yet.
	evals, err := s.EvalsByJob(ws, job.Namespace, job.ID)
	if err != nil {
		return nil, err
	}
	var newest *structs.Evaluation
	for _, e := range evals {
		if e.Status != structs.EvalStatusComplete && e.Status != structs.EvalStatusBlocked {
			continue
		}
		if e.QueuedAllocations != nil && (newest == nil || e.ModifyIndex > newest.ModifyIndex) {
			newest = e
		}
	}
	if newest != nil {
		for tg, n := range newest.QueuedAllocations {
			if tgs, ok := sum.Summary[tg]; ok {
				tgs.Queued = n
				sum.Summary[tg] = tgs
			}
		}
	}
	return sum, nil
}

// UpsertJob registers a job or a new version of it. The version goes up
// only when the specification changed.
func (t *Txn) UpsertJob(index uint64, job *structs.Job) error {
	for _, tg := range job.TaskGroups {
		if tg == nil || slices.Contains(tg.Tasks, nil) {
			return fmt.Errorf("%w: job %q has a null task group or task", ErrInvalidRequest, job.ID)
		}
	}
	raw, err := t.First(TableJobs, "id", job.Namespace, job.ID)
	if err != nil {
		return fmt.Errorf("job lookup: %w", err)
	}
	ns, err := t.First(TableNamespaces, "id", job.Namespace)
	if err != nil {
		return fmt.Errorf("namespace lookup: %w", err)
	}
	if ns == nil {
		return fmt.Errorf("%w: namespace %q does not exist", ErrInvalidRequest, job.Namespace)
	}
	job.ModifyIndex = index
	job.JobModifyIndex = index
	if raw != nil {
		old := raw.(*structs.Job)
		job.CreateIndex = old.CreateIndex
		job.Version = old.Version
		if !specChanged(old, job) {
			// an identical registration changes nothing, so a client's
			// check-and-set index stays valid (as in Nomad)
			return nil
		}
		job.Version++
	} else {
		job.CreateIndex = index
		job.Version = 0
	}
	if err := t.setJobStatus(job); err != nil {
		return err
	}
	if err := t.Insert(TableJobs, job); err != nil {
		return fmt.Errorf("job insert: %w", err)
	}
	return t.bumpIndex(TableJobs, index)
}

// DeleteJob removes a job (purge). Its evaluations and allocations stay
// until garbage collection.
func (t *Txn) DeleteJob(index uint64, namespace, id string) error {
	raw, err := t.First(TableJobs, "id", namespace, id)
	if err != nil {
		return fmt.Errorf("job lookup: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	if err := t.Delete(TableJobs, raw); err != nil {
		return fmt.Errorf("job delete: %w", err)
	}
	return t.bumpIndex(TableJobs, index)
}

// refreshJobStatus recomputes the status of a job after its allocations
// or evaluations changed.
func (t *Txn) refreshJobStatus(index uint64, namespace, id string) error {
	raw, err := t.First(TableJobs, "id", namespace, id)
	if err != nil || raw == nil {
		return err
	}
	old := raw.(*structs.Job)
	job := *old
	if err := t.setJobStatus(&job); err != nil {
		return err
	}
	if job.Status == old.Status {
		return nil
	}
	job.ModifyIndex = index
	if err := t.Insert(TableJobs, &job); err != nil {
		return fmt.Errorf("job insert: %w", err)
	}
	return t.bumpIndex(TableJobs, index)
}

// setJobStatus derives a job's status as Nomad does: system, periodic and
// parameterized jobs run until stopped; others run while an allocation is
// live, are pending while an evaluation is, and are dead once everything
// they had is terminal.
func (t *Txn) setJobStatus(job *structs.Job) error {
	if job.Type == structs.JobTypeSystem || job.IsPeriodic() || job.IsParameterized() {
		job.Status = structs.JobStatusRunning
		if job.Stop {
			job.Status = structs.JobStatusDead
		}
		return nil
	}
	it, err := t.Get(TableAllocs, "job", job.Namespace, job.ID)
	if err != nil {
		return fmt.Errorf("job allocs: %w", err)
	}
	hasAlloc := false
	for raw := it.Next(); raw != nil; raw = it.Next() {
		hasAlloc = true
		if !raw.(*structs.Allocation).TerminalStatus() {
			job.Status = structs.JobStatusRunning
			return nil
		}
	}
	it, err = t.Get(TableEvals, "job", job.Namespace, job.ID)
	if err != nil {
		return fmt.Errorf("job evals: %w", err)
	}
	hasEval := false
	for raw := it.Next(); raw != nil; raw = it.Next() {
		hasEval = true
		if !raw.(*structs.Evaluation).TerminalStatus() {
			job.Status = structs.JobStatusPending
			return nil
		}
	}
	if hasAlloc || hasEval {
		job.Status = structs.JobStatusDead
	} else {
		job.Status = structs.JobStatusPending
	}
	return nil
}

// specChanged compares what the user wrote, ignoring bookkeeping fields.
func specChanged(a, b *structs.Job) bool {
	return !bytes.Equal(specBytes(a), specBytes(b))
}

func specBytes(j *structs.Job) []byte {
	c := *j
	c.Status, c.StatusDescription = "", ""
	c.Stable = false
	c.Version, c.SubmitTime = 0, 0
	c.CreateIndex, c.ModifyIndex, c.JobModifyIndex = 0, 0, 0
	b, _ := json.Marshal(&c)
	return b
}
