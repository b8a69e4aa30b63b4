package fsm

import "github.com/berth-dev/berth/fsm/state"

func init() {
	register(EvalUpsertType, &commandSpec{
		name: "eval-upsert", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(EvalUpsertCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			return nil, txn.UpsertEvals(index, payload.(*EvalUpsertCommand).Evals)
		},
	})
	register(EvalDeleteType, &commandSpec{
		name: "eval-delete", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(EvalDeleteCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			return nil, txn.DeleteEvals(index, payload.(*EvalDeleteCommand).EvalIDs)
		},
	})
}
