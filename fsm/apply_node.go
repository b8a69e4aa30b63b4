package fsm

import (
	"fmt"

	"github.com/berth-dev/berth/fsm/state"
)

func init() {
	register(NodeRegisterType, &commandSpec{
		name: "node-register", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(NodeRegisterCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			cmd := payload.(*NodeRegisterCommand)
			if cmd.Node == nil {
				return nil, fmt.Errorf("%w: node register without a node", state.ErrInvalidRequest)
			}
			// the leader picks free subnets, but an entry of a former
			// leader may commit after its successor chose the same one
			if err := txn.CheckNodeSubnetsFree(cmd.Node); err != nil {
				return nil, fmt.Errorf("node register: %w", err)
			}
			if err := txn.UpsertNode(index, cmd.Node); err != nil {
				return nil, err
			}
			return nil, upsertEvals(txn, index, cmd.Evals)
		},
	})
	register(NodeDeregisterType, &commandSpec{
		name: "node-deregister", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(NodeDeregisterCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			return nil, txn.DeleteNodes(index, payload.(*NodeDeregisterCommand).NodeIDs)
		},
	})
	register(NodeUpdateStatusType, &commandSpec{
		name: "node-update-status", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(NodeUpdateStatusCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			cmd := payload.(*NodeUpdateStatusCommand)
			if err := txn.UpdateNodeStatus(index, cmd.NodeID, cmd.Status, cmd.UpdatedAt); err != nil {
				return nil, err
			}
			return nil, upsertEvals(txn, index, cmd.Evals)
		},
	})
	register(NodeUpdateEligibilityType, &commandSpec{
		name: "node-update-eligibility", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(NodeUpdateEligibilityCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			cmd := payload.(*NodeUpdateEligibilityCommand)
			if err := txn.UpdateNodeEligibility(index, cmd.NodeID, cmd.Eligibility); err != nil {
				return nil, err
			}
			return nil, upsertEvals(txn, index, cmd.Evals)
		},
	})
}
