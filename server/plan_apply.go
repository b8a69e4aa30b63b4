package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// The plan applier is the only writer of placements. It takes plans from
// the plan queue one at a time and re-checks each node of a plan against
// the latest state: the node must exist and (for new placements) be ready
// and eligible, and the node's non-terminal allocations, minus the plan's
// stops and preemptions there, plus its placements, must fit — no
// dimension over-committed, no host port given twice. The nodes that pass
// commit in one ApplyPlanResults entry; the others are reported through
// RefreshIndex so the scheduler refreshes and retries.
//
// Evaluation overlaps the commit: while plan N is being committed through
// Raft, plan N+1 is evaluated against a fresh snapshot with plan N's
// result written into it (memdb snapshots are writable copies). At most
// one commit is outstanding; plan N+1 is committed only after N's entry
// was applied, and is evaluated again without the overlay if N failed.

// ErrPlanTokenInvalid refuses a plan whose worker lost its delivery.
var ErrPlanTokenInvalid = errors.New("plan refused: the evaluation's delivery token is no longer valid")

type planApplier struct {
	logger *slog.Logger
	queue  *planQueue
	// snapshot returns a point-in-time view of the latest state.
	snapshot func() *state.Snapshot
	// apply commits a plan result through Raft and returns its index once
	// the local FSM applied it.
	apply func(*fsm.ApplyPlanResultsCommand) (uint64, error)
	// tokenValid checks the broker's outstanding delivery of an eval.
	tokenValid func(evalID, token string) bool
	now        func() time.Time
	newID      func() string
	// parallelism > 1 evaluates the nodes of big plans concurrently.
	parallelism int
	// serial waits for each commit to be applied before evaluating the
	// next plan, instead of overlapping them (kept to measure the
	// difference; see BenchmarkPlanApply).
	serial bool
}

// applyOp is one outstanding commit.
type applyOp struct {
	cmd   *fsm.ApplyPlanResultsCommand
	done  chan struct{}
	index uint64
	err   error
}

func (op *applyOp) finished() bool {
	select {
	case <-op.done:
		return true
	default:
		return false
	}
}

// run applies plans until ctx ends.
func (p *planApplier) run(ctx context.Context) {
	var inflight *applyOp
	defer func() {
		if inflight != nil {
			<-inflight.done
		}
	}()
	for {
		pp, err := p.queue.Dequeue(ctx)
		if err != nil {
			return
		}
		plan := pp.plan
		if p.tokenValid != nil && !p.tokenValid(plan.EvalID, plan.EvalToken) {
			pp.respond(nil, ErrPlanTokenInvalid)
			continue
		}
		// Check for completion before the snapshot: one taken after the
		// commit was applied holds it; otherwise the overlay does.
		if inflight != nil && (p.serial || inflight.finished()) {
			<-inflight.done
			inflight = nil
		}
		snap := p.snapshot()
		snapIndex := snap.LatestIndex()
		if inflight != nil {
			if err := p.overlay(snap, snapIndex+1, inflight.cmd); err != nil {
				p.logger.Warn("plan applier: overlay of the outstanding commit failed", "error", err)
				<-inflight.done
				inflight = nil
				snap = p.snapshot()
				snapIndex = snap.LatestIndex()
			}
		}
		result, err := p.evaluate(snap, snapIndex, plan)
		if inflight != nil {
			<-inflight.done
			if inflight.err != nil && err == nil {
				// What we assumed did not commit: judge again on the truth.
				snap = p.snapshot()
				snapIndex = snap.LatestIndex()
				result, err = p.evaluate(snap, snapIndex, plan)
			} else if result != nil && result.RefreshIndex != 0 {
				result.RefreshIndex = max(result.RefreshIndex, inflight.index)
			}
			inflight = nil
		}
		if err != nil {
			pp.respond(nil, err)
			continue
		}
		if resultIsNoOp(result) {
			pp.respond(result, nil)
			continue
		}
		inflight = p.commit(pp, result)
	}
}

func resultIsNoOp(r *structs.PlanResult) bool {
	return len(r.NodeAllocation) == 0 && len(r.NodeUpdate) == 0 && len(r.NodePreemptions) == 0
}

// commit starts the Raft commit of a result; the plan's worker is answered
// when it is done.
func (p *planApplier) commit(pp *pendingPlan, result *structs.PlanResult) *applyOp {
	op := &applyOp{cmd: p.command(pp.plan, result), done: make(chan struct{})}
	go func() {
		index, err := p.apply(op.cmd)
		op.index, op.err = index, err
		close(op.done)
		if err != nil {
			pp.respond(nil, fmt.Errorf("commit plan: %w", err))
			return
		}
		result.AllocIndex = index
		pp.respond(result, nil)
	}()
	return op
}

// command builds the Raft entry for the accepted part of a plan.
func (p *planApplier) command(plan *structs.Plan, r *structs.PlanResult) *fsm.ApplyPlanResultsCommand {
	now := p.now()
	cmd := &fsm.ApplyPlanResultsCommand{Job: plan.Job, EvalID: plan.EvalID, UpdatedAt: now.UnixNano()}
	for _, node := range sortedKeys(r.NodeAllocation) {
		for _, a := range r.NodeAllocation[node] {
			c := *a
			c.Job = nil
			if c.EvalID == "" {
				c.EvalID = plan.EvalID
			}
			if c.CreateTime == 0 {
				c.CreateTime = now.UnixNano()
			}
			c.ModifyTime = now.UnixNano()
			cmd.AllocsUpdated = append(cmd.AllocsUpdated, &c)
		}
	}
	for _, node := range sortedKeys(r.NodeUpdate) {
		for _, a := range r.NodeUpdate[node] {
			cmd.AllocsStopped = append(cmd.AllocsStopped, &structs.Allocation{
				ID: a.ID, Namespace: a.Namespace, JobID: a.JobID, NodeID: a.NodeID, TaskGroup: a.TaskGroup,
				DesiredStatus: a.DesiredStatus, DesiredDescription: a.DesiredDescription,
				ClientStatus: a.ClientStatus, FollowupEvalID: a.FollowupEvalID,
			})
		}
	}
	type jk struct{ ns, id string }
	preemptedJobs := map[jk]*structs.Evaluation{}
	for _, node := range sortedKeys(r.NodePreemptions) {
		for _, a := range r.NodePreemptions[node] {
			cmd.AllocsPreempted = append(cmd.AllocsPreempted, &structs.Allocation{
				ID: a.ID, Namespace: a.Namespace, JobID: a.JobID, NodeID: a.NodeID, TaskGroup: a.TaskGroup,
				DesiredStatus: a.DesiredStatus, DesiredDescription: a.DesiredDescription,
				PreemptedByAllocation: a.PreemptedByAllocation,
			})
			k := jk{a.Namespace, a.JobID}
			if _, ok := preemptedJobs[k]; ok || a.Job == nil {
				continue
			}
			e := &structs.Evaluation{
				ID: p.newID(), Namespace: a.Namespace, Priority: a.Job.Priority, Type: a.Job.Type,
				TriggeredBy: structs.EvalTriggerPreemption, JobID: a.JobID, Status: structs.EvalStatusPending,
				CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
			}
			preemptedJobs[k] = e
			cmd.Evals = append(cmd.Evals, e)
		}
	}
	return cmd
}

// overlay writes an outstanding commit's allocations into snap, as the
// FSM will (without the bookkeeping plan evaluation does not read: table
// indexes, job statuses).
func (p *planApplier) overlay(snap *state.Snapshot, index uint64, cmd *fsm.ApplyPlanResultsCommand) error {
	txn := snap.Txn(true)
	defer txn.Abort()
	for _, a := range cmd.AllocsUpdated {
		c := *a
		if c.Job == nil {
			c.Job = cmd.Job
		}
		if c.DesiredStatus == "" {
			c.DesiredStatus = structs.AllocDesiredStatusRun
		}
		c.ModifyIndex = index
		if err := txn.Insert(state.TableAllocs, &c); err != nil {
			return err
		}
	}
	for _, list := range [][]*structs.Allocation{cmd.AllocsStopped, cmd.AllocsPreempted} {
		for _, a := range list {
			raw, err := txn.First(state.TableAllocs, "id", a.ID)
			if err != nil {
				return err
			}
			if raw == nil {
				continue
			}
			c := *raw.(*structs.Allocation)
			c.DesiredStatus, c.DesiredDescription = a.DesiredStatus, a.DesiredDescription
			if a.ClientStatus != "" {
				c.ClientStatus = a.ClientStatus
			}
			c.ModifyIndex = index
			if err := txn.Insert(state.TableAllocs, &c); err != nil {
				return err
			}
		}
	}
	txn.Commit()
	return nil
}

// evaluate decides which nodes of the plan commit.
func (p *planApplier) evaluate(snap *state.Snapshot, snapIndex uint64, plan *structs.Plan) (*structs.PlanResult, error) {
	nodes := planNodes(plan)
	verdicts := make([]nodeVerdict, len(nodes))
	if p.parallelism > 1 && len(nodes) >= 64 {
		var wg sync.WaitGroup
		workers := min(p.parallelism, runtime.GOMAXPROCS(0))
		chunk := (len(nodes) + workers - 1) / workers
		for start := 0; start < len(nodes); start += chunk {
			end := min(start+chunk, len(nodes))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := start; i < end; i++ {
					verdicts[i] = evaluateNodePlan(snap, plan, nodes[i])
				}
			}()
		}
		wg.Wait()
	} else {
		for i, n := range nodes {
			verdicts[i] = evaluateNodePlan(snap, plan, n)
		}
	}

	result := &structs.PlanResult{}
	partial := false
	for i, node := range nodes {
		v := verdicts[i]
		if v.err != nil {
			return nil, fmt.Errorf("evaluate plan on node %s: %w", node, v.err)
		}
		if !v.fit {
			partial = true
			p.logger.Debug("plan refused on node", "eval_id", plan.EvalID, "node_id", node, "reason", v.reason)
			if plan.AllAtOnce {
				return &structs.PlanResult{RefreshIndex: snapIndex}, nil
			}
			continue
		}
		if l := plan.NodeUpdate[node]; len(l) > 0 {
			setNode(&result.NodeUpdate, node, l)
		}
		if l := plan.NodeAllocation[node]; len(l) > 0 {
			setNode(&result.NodeAllocation, node, l)
		}
		if len(v.preempted) > 0 {
			setNode(&result.NodePreemptions, node, v.preempted)
		}
	}
	if partial {
		result.RefreshIndex = snapIndex
	}
	return result, nil
}

func setNode(m *map[string][]*structs.Allocation, node string, l []*structs.Allocation) {
	if *m == nil {
		*m = make(map[string][]*structs.Allocation)
	}
	(*m)[node] = l
}

// planNodes lists the nodes a plan touches, sorted.
func planNodes(plan *structs.Plan) []string {
	seen := make(map[string]struct{}, len(plan.NodeAllocation)+len(plan.NodeUpdate))
	for _, m := range []map[string][]*structs.Allocation{plan.NodeUpdate, plan.NodeAllocation, plan.NodePreemptions} {
		for n := range m {
			seen[n] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string][]*structs.Allocation) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type nodeVerdict struct {
	fit    bool
	reason string
	err    error
	// preempted are the plan's preemptions on the node that are still
	// live (those already terminal are dropped).
	preempted []*structs.Allocation
}

// evaluateNodePlan checks one node of a plan against snap.
func evaluateNodePlan(snap *state.Snapshot, plan *structs.Plan, nodeID string) nodeVerdict {
	places := plan.NodeAllocation[nodeID]
	existing, err := snap.AllocsByNode(nil, nodeID)
	if err != nil {
		return nodeVerdict{err: err}
	}
	live := make(map[string]*structs.Allocation, len(existing))
	for _, a := range existing {
		if !a.TerminalStatus() {
			live[a.ID] = a
		}
	}
	var preempted []*structs.Allocation
	for _, a := range plan.NodePreemptions[nodeID] {
		if cur := live[a.ID]; cur != nil {
			c := *a
			c.Job = cur.Job // the preempted job gets an evaluation
			preempted = append(preempted, &c)
		}
	}
	if len(places) == 0 {
		// Stops and evictions are always accepted.
		return nodeVerdict{fit: true, preempted: preempted}
	}
	node, err := snap.NodeByID(nil, nodeID)
	if err != nil {
		return nodeVerdict{err: err}
	}
	if node == nil {
		return nodeVerdict{reason: "node does not exist"}
	}
	if node.Status != structs.NodeStatusReady {
		return nodeVerdict{reason: "node is not ready for placements"}
	}
	remove := make(map[string]bool, len(plan.NodeUpdate[nodeID])+len(preempted)+len(places))
	for _, a := range plan.NodeUpdate[nodeID] {
		remove[a.ID] = true
	}
	for _, a := range preempted {
		remove[a.ID] = true
	}
	newPlacement := false
	for _, a := range places {
		// an in-place update replaces the alloc's current version
		if live[a.ID] == nil {
			newPlacement = true
		}
		remove[a.ID] = true
	}
	if newPlacement && (node.SchedulingEligibility == structs.NodeSchedulingIneligible || node.DrainStrategy != nil) {
		return nodeVerdict{reason: "node is not eligible for new placements"}
	}
	proposed := make([]*structs.Allocation, 0, len(live)+len(places))
	for _, a := range existing {
		if live[a.ID] != nil && !remove[a.ID] {
			proposed = append(proposed, a)
		}
	}
	proposed = append(proposed, places...)
	fit, dim, _, err := structs.AllocsFit(node, proposed, true)
	if err != nil {
		return nodeVerdict{err: err}
	}
	if !fit {
		return nodeVerdict{reason: "exhausted " + dim}
	}
	return nodeVerdict{fit: true, preempted: preempted}
}
