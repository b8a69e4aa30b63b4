package fsm

import (
	"fmt"

	"github.com/berth-dev/berth/fsm/state"
)

func init() {
	register(NodeUpdateDrainType, &commandSpec{
		name: "node-update-drain", since: 2, payloadVersion: payloadVersionMsgpack,
		newPayload: func() any { return new(NodeUpdateDrainCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			cmd := payload.(*NodeUpdateDrainCommand)
			if cmd.NodeID == "" {
				return nil, fmt.Errorf("%w: node drain without a node ID", state.ErrInvalidRequest)
			}
			if err := txn.UpdateNodeDrain(index, cmd.NodeID, cmd.DrainStrategy, cmd.MarkEligible, cmd.NodeEvent); err != nil {
				return nil, err
			}
			return nil, upsertEvals(txn, index, cmd.Evals)
		},
	})
	register(AllocUpdateDesiredTransitionType, &commandSpec{
		name: "alloc-update-desired-transition", since: 2, payloadVersion: payloadVersionMsgpack,
		newPayload: func() any { return new(AllocUpdateDesiredTransitionCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			cmd := payload.(*AllocUpdateDesiredTransitionCommand)
			if err := txn.UpdateAllocsDesiredTransitions(index, cmd.Allocs, cmd.UpdatedAt); err != nil {
				return nil, err
			}
			return nil, upsertEvals(txn, index, cmd.Evals)
		},
	})
}
