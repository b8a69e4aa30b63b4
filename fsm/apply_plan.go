package fsm

import "github.com/berth-dev/berth/fsm/state"

func init() {
	register(ApplyPlanResultsType, &commandSpec{
		name: "apply-plan-results", since: 1, payloadVersion: 2,
		newPayload: func() any { return new(ApplyPlanResultsCommand) },
		apply:      applyPlanResults,
	})
}

func applyPlanResults(txn *state.Txn, index uint64, payload any) (any, error) {
	cmd := payload.(*ApplyPlanResultsCommand)
	return nil, txn.UpsertPlanResults(index, &state.PlanResults{
		Job:             cmd.Job,
		AllocsUpdated:   cmd.AllocsUpdated,
		AllocsStopped:   cmd.AllocsStopped,
		AllocsPreempted: cmd.AllocsPreempted,
		Evals:           cmd.Evals,
		UpdatedAt:       cmd.UpdatedAt,
	})
}
