package fsm

import "github.com/berth-dev/berth/fsm/state"

func init() {
	register(NamespaceUpsertType, &commandSpec{
		name: "namespace-upsert", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(NamespaceUpsertCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			return nil, txn.UpsertNamespaces(index, payload.(*NamespaceUpsertCommand).Namespaces)
		},
	})
	register(NamespaceDeleteType, &commandSpec{
		name: "namespace-delete", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(NamespaceDeleteCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			return nil, txn.DeleteNamespaces(index, payload.(*NamespaceDeleteCommand).Names)
		},
	})
}
