package state

import (
	"fmt"

	"github.com/berth-dev/berth/structs"
)

// PlanResults is what the plan applier committed of one plan: the FSM
// hands it over as one transaction.
type PlanResults struct {
	// Job is attached to every placed or updated allocation that carries
	// no Job of its own.
	Job *structs.Job
	// AllocsUpdated are full allocations: placements, in-place updates.
	AllocsUpdated []*structs.Allocation
	// AllocsStopped and AllocsPreempted are partial: only their ID,
	// DesiredStatus, DesiredDescription, ClientStatus/ClientDescription
	// (when set), FollowupEvalID and PreemptedByAllocation are applied
	// onto the stored allocation.
	AllocsStopped   []*structs.Allocation
	AllocsPreempted []*structs.Allocation
	Evals           []*structs.Evaluation
	// UpdatedAt is the leader's clock at commit (ModifyTime).
	UpdatedAt int64
}

type jobKey struct{ ns, id string }

// UpsertPlanResults commits a plan's results. It is linear in the number
// of allocations: one lookup and one insert per allocation and one status
// refresh per job touched.
func (t *Txn) UpsertPlanResults(index uint64, r *PlanResults) error {
	jobs := make(map[jobKey]struct{})
	ac := newAllocCompactor(t.Txn, r.Job)
	for _, a := range r.AllocsUpdated {
		if err := t.upsertPlannedAlloc(index, r, ac, a); err != nil {
			return err
		}
		jobs[jobKey{a.Namespace, a.JobID}] = struct{}{}
	}
	for _, group := range []struct {
		allocs  []*structs.Allocation
		desired string
	}{
		{r.AllocsStopped, structs.AllocDesiredStatusStop},
		{r.AllocsPreempted, structs.AllocDesiredStatusEvict},
	} {
		for _, a := range group.allocs {
			k, ok, err := t.applyAllocTransition(index, r.UpdatedAt, a, group.desired)
			if err != nil {
				return err
			}
			if ok {
				jobs[k] = struct{}{}
			}
		}
	}
	if len(r.AllocsUpdated)+len(r.AllocsStopped)+len(r.AllocsPreempted) > 0 {
		if err := t.bumpIndex(TableAllocs, index); err != nil {
			return err
		}
	}
	if len(r.Evals) > 0 {
		if err := t.UpsertEvals(index, r.Evals); err != nil {
			return err
		}
	}
	return t.refreshJobStatuses(index, jobs)
}

func (t *Txn) upsertPlannedAlloc(index uint64, r *PlanResults, ac *allocCompactor, a *structs.Allocation) error {
	if a == nil || a.ID == "" {
		return fmt.Errorf("%w: planned allocation without ID", ErrInvalidRequest)
	}
	if a.NodeID == "" {
		return fmt.Errorf("%w: planned allocation %s without node", ErrInvalidRequest, a.ID)
	}
	c := *a
	raw, err := t.First(TableAllocs, "id", c.ID)
	if err != nil {
		return fmt.Errorf("alloc lookup: %w", err)
	}
	if c.Job == nil {
		c.Job = r.Job
	}
	if raw != nil {
		old := raw.(*structs.Allocation)
		c.CreateIndex = old.CreateIndex
		if c.CreateTime == 0 {
			c.CreateTime = old.CreateTime
		}
		if c.Job == nil {
			c.Job = old.Job
		}
		// What the agent reported stays: the scheduler's copy may be
		// older than the last client update. Only lost and unknown are
		// the scheduler's to set.
		c.TaskStates = old.TaskStates
		if c.ClientStatus != structs.AllocClientStatusLost && c.ClientStatus != structs.AllocClientStatusUnknown {
			c.ClientStatus, c.ClientDescription = old.ClientStatus, old.ClientDescription
		}
	} else {
		if c.Job == nil {
			return fmt.Errorf("%w: new allocation %s without job", ErrInvalidRequest, c.ID)
		}
		if err := t.linkNextAllocation(index, c.PreviousAllocation, c.ID); err != nil {
			return err
		}
		c.CreateIndex = index
		if c.CreateTime == 0 {
			c.CreateTime = r.UpdatedAt
		}
		if c.ClientStatus == "" {
			c.ClientStatus = structs.AllocClientStatusPending
		}
		ac.compactNew(&c)
	}
	if c.DesiredStatus == "" {
		c.DesiredStatus = structs.AllocDesiredStatusRun
	}
	if r.UpdatedAt != 0 {
		c.ModifyTime = r.UpdatedAt
	}
	c.ModifyIndex = index
	c.AllocModifyIndex = index
	if err := t.Insert(TableAllocs, &c); err != nil {
		return fmt.Errorf("alloc insert: %w", err)
	}
	return nil
}

// applyAllocTransition applies a stop or preemption onto the stored
// allocation. An allocation that no longer exists (garbage collected) is
// skipped.
func (t *Txn) applyAllocTransition(index uint64, updatedAt int64, a *structs.Allocation, defaultDesired string) (jobKey, bool, error) {
	if a == nil || a.ID == "" {
		return jobKey{}, false, fmt.Errorf("%w: stopped or preempted allocation without ID", ErrInvalidRequest)
	}
	raw, err := t.First(TableAllocs, "id", a.ID)
	if err != nil {
		return jobKey{}, false, fmt.Errorf("alloc lookup: %w", err)
	}
	if raw == nil {
		return jobKey{}, false, nil
	}
	c := *raw.(*structs.Allocation)
	c.DesiredStatus = a.DesiredStatus
	if c.DesiredStatus == "" {
		c.DesiredStatus = defaultDesired
	}
	c.DesiredDescription = a.DesiredDescription
	if a.ClientStatus != "" {
		c.ClientStatus = a.ClientStatus
		if a.ClientDescription != "" {
			c.ClientDescription = a.ClientDescription
		}
	}
	if a.FollowupEvalID != "" {
		c.FollowupEvalID = a.FollowupEvalID
	}
	if a.PreemptedByAllocation != "" {
		c.PreemptedByAllocation = a.PreemptedByAllocation
	}
	if updatedAt != 0 {
		c.ModifyTime = updatedAt
	}
	c.ModifyIndex = index
	c.AllocModifyIndex = index
	if err := t.Insert(TableAllocs, &c); err != nil {
		return jobKey{}, false, fmt.Errorf("alloc insert: %w", err)
	}
	return jobKey{c.Namespace, c.JobID}, true, nil
}

func (t *Txn) refreshJobStatuses(index uint64, jobs map[jobKey]struct{}) error {
	for k := range jobs {
		if err := t.refreshJobStatus(index, k.ns, k.id); err != nil {
			return err
		}
	}
	return nil
}

// linkNextAllocation records on a replaced allocation which one replaced
// it, as Nomad's NextAllocation.
func (t *Txn) linkNextAllocation(index uint64, prevID, nextID string) error {
	if prevID == "" {
		return nil
	}
	raw, err := t.First(TableAllocs, "id", prevID)
	if err != nil || raw == nil {
		return err
	}
	prev := *raw.(*structs.Allocation)
	if prev.NextAllocation == nextID {
		return nil
	}
	prev.NextAllocation = nextID
	prev.ModifyIndex = index
	if err := t.Insert(TableAllocs, &prev); err != nil {
		return fmt.Errorf("alloc insert: %w", err)
	}
	return nil
}
