package fsm

import (
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func init() {
	register(AllocUpsertType, &commandSpec{
		name: "alloc-upsert", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(AllocUpsertCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			return nil, txn.UpsertAllocs(index, payload.(*AllocUpsertCommand).Allocs)
		},
	})
	register(AllocClientUpdateType, &commandSpec{
		name: "alloc-client-update", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(AllocClientUpdateCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			cmd := payload.(*AllocClientUpdateCommand)
			if err := txn.UpdateAllocsFromClient(index, cmd.Allocs, cmd.UpdatedAt); err != nil {
				return nil, err
			}
			return nil, upsertEvals(txn, index, cmd.Evals)
		},
	})
}

// upsertEvals writes the evaluations that travel with a command, if any.
func upsertEvals(txn *state.Txn, index uint64, evals []*structs.Evaluation) error {
	if len(evals) == 0 {
		return nil
	}
	return txn.UpsertEvals(index, evals)
}
