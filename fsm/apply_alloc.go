package fsm

import "github.com/berth-dev/berth/fsm/state"

func init() {
	register(AllocUpsertType, &commandSpec{
		name: "alloc-upsert", since: 1, payloadVersion: 1,
		newPayload: func() any { return new(AllocUpsertCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			return nil, txn.UpsertAllocs(index, payload.(*AllocUpsertCommand).Allocs)
		},
	})
}
