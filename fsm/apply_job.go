package fsm

import (
	"fmt"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func init() {
	register(JobRegisterType, &commandSpec{
		name: "job-register", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(JobRegisterCommand) },
		apply:      applyJobRegister,
	})
	register(JobDeregisterType, &commandSpec{
		name: "job-deregister", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(JobDeregisterCommand) },
		apply:      applyJobDeregister,
	})
}

func applyJobRegister(txn *state.Txn, index uint64, payload any) (any, error) {
	cmd := payload.(*JobRegisterCommand)
	if cmd.Job == nil {
		return nil, fmt.Errorf("%w: job register without a job", state.ErrInvalidRequest)
	}
	if cmd.EnforceIndex {
		raw, err := txn.First(state.TableJobs, "id", cmd.Job.Namespace, cmd.Job.ID)
		if err != nil {
			return nil, err
		}
		var current uint64
		if raw != nil {
			current = raw.(*structs.Job).JobModifyIndex
		}
		if (raw == nil && cmd.JobModifyIndex != 0) || current != cmd.JobModifyIndex {
			return nil, fmt.Errorf("%w: enforcing job modify index %d: job has modify index %d",
				state.ErrConflict, cmd.JobModifyIndex, current)
		}
	}
	if err := txn.UpsertJob(index, cmd.Job); err != nil {
		return nil, err
	}
	stored, err := txn.First(state.TableJobs, "id", cmd.Job.Namespace, cmd.Job.ID)
	if err != nil || stored == nil {
		return nil, fmt.Errorf("job register: job missing after upsert: %v", err)
	}
	jobModifyIndex := stored.(*structs.Job).JobModifyIndex
	if cmd.Eval != nil {
		cmd.Eval.JobModifyIndex = jobModifyIndex
		if err := txn.UpsertEvals(index, []*structs.Evaluation{cmd.Eval}); err != nil {
			return nil, err
		}
	}
	return &JobRegisterResult{JobModifyIndex: jobModifyIndex}, nil
}

func applyJobDeregister(txn *state.Txn, index uint64, payload any) (any, error) {
	cmd := payload.(*JobDeregisterCommand)
	raw, err := txn.First(state.TableJobs, "id", cmd.Namespace, cmd.JobID)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("job %q in namespace %q: %w", cmd.JobID, cmd.Namespace, state.ErrNotFound)
	}
	if cmd.Purge {
		err = txn.DeleteJob(index, cmd.Namespace, cmd.JobID)
	} else {
		stopped := *raw.(*structs.Job)
		stopped.Stop = true
		stopped.SubmitTime = cmd.SubmitTime
		err = txn.UpsertJob(index, &stopped)
	}
	if err != nil {
		return nil, err
	}
	jobModifyIndex := index
	if !cmd.Purge {
		if stored, err := txn.First(state.TableJobs, "id", cmd.Namespace, cmd.JobID); err == nil && stored != nil {
			jobModifyIndex = stored.(*structs.Job).JobModifyIndex
		}
	}
	if cmd.Eval != nil {
		cmd.Eval.JobModifyIndex = jobModifyIndex
		if err := txn.UpsertEvals(index, []*structs.Evaluation{cmd.Eval}); err != nil {
			return nil, err
		}
	}
	return &JobRegisterResult{JobModifyIndex: jobModifyIndex}, nil
}
