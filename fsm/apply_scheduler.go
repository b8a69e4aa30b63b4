package fsm

import "github.com/berth-dev/berth/fsm/state"

func init() {
	register(SchedulerConfigType, &commandSpec{
		name: "scheduler-config", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(SchedulerConfigCommand) },
		apply: func(txn *state.Txn, index uint64, payload any) (any, error) {
			cmd := payload.(*SchedulerConfigCommand)
			return nil, txn.SetSchedulerConfig(index, cmd.Config, cmd.CAS, cmd.Index)
		},
	})
}
