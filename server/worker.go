package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// schedulerTypes are the evaluation types the workers serve.
var schedulerTypes = []string{structs.JobTypeService, structs.JobTypeBatch, structs.JobTypeSystem, structs.JobTypeSysBatch}

// indexWaitTimeout bounds how long a worker waits for the local state to
// reach an evaluation's or a plan's index before it gives the eval back.
const indexWaitTimeout = 10 * time.Second

// schedulingServices are the leader-only parts of scheduling: the eval
// broker and its feed, blocked evals and their capacity watcher, the plan
// queue and applier, the workers and the reapers. They live as long as
// one term of leadership; everything they hold is rebuilt from the store.
type schedulingServices struct {
	srv     *Server
	logger  *slog.Logger
	broker  *evalBroker
	blocked *blockedEvals
	plans   *planQueue
	applier *planApplier

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startScheduling starts the leader's scheduling services and returns the
// function that stops them and waits for them.
func (s *Server) startScheduling(parent context.Context) func() {
	ctx, cancel := context.WithCancel(parent)
	cfg := s.config
	ss := &schedulingServices{srv: s, logger: s.baseLogger.With("component", "scheduling"), cancel: cancel}
	ss.broker = newEvalBroker(evalBrokerConfig{
		NackTimeout:         cfg.EvalNackTimeout,
		DeliveryLimit:       cfg.EvalDeliveryLimit,
		InitialNackDelay:    time.Second,
		SubsequentNackDelay: 20 * time.Second,
	})
	ss.blocked = newBlockedEvals(ss.logger.With("component", "blocked_evals"), ss.broker.Enqueue)
	ss.plans = newPlanQueue()
	ss.applier = &planApplier{
		logger:     ss.logger.With("component", "plan_apply"),
		queue:      ss.plans,
		snapshot:   func() *state.Snapshot { return s.fsm.State().Snapshot() },
		apply:      ss.applyPlanResults,
		tokenValid: ss.broker.TokenValid,
		now:        time.Now,
		newID:      generateUUID,
	}
	ss.broker.SetEnabled(true)
	ss.blocked.SetEnabled(true)
	ss.plans.SetEnabled(true)

	n := cfg.NumSchedulers
	if n == 0 {
		n = runtime.NumCPU()
	}
	ss.goRun(func() { ss.applier.run(ctx) })
	ss.goRun(func() { ss.feedEvals(ctx) })
	ss.goRun(func() { ss.blocked.watchCapacity(ctx, s.fsm.State) })
	ss.goRun(func() { ss.reapFailed(ctx) })
	ss.goRun(func() { ss.reapSuperseded(ctx) })
	for i := 0; i < n; i++ {
		w := &worker{ss: ss, logger: ss.logger.With("component", "worker", "worker", i)}
		ss.goRun(func() { w.run(ctx) })
	}
	ss.logger.Info("scheduling started", "workers", n)
	return func() {
		ss.broker.SetEnabled(false)
		ss.blocked.SetEnabled(false)
		ss.plans.SetEnabled(false)
		cancel()
		ss.wg.Wait()
		ss.logger.Info("scheduling stopped")
	}
}

func (ss *schedulingServices) goRun(f func()) {
	ss.wg.Add(1)
	go func() { defer ss.wg.Done(); f() }()
}

func (ss *schedulingServices) applyPlanResults(cmd *fsm.ApplyPlanResultsCommand) (uint64, error) {
	index, _, err := ss.srv.raftApply(fsm.ApplyPlanResultsType, cmd)
	return index, err
}

func (ss *schedulingServices) upsertEvals(evals ...*structs.Evaluation) (uint64, error) {
	index, _, err := ss.srv.raftApply(fsm.EvalUpsertType, &fsm.EvalUpsertCommand{Evals: evals})
	return index, err
}

// feedEvals is the leader loop that learns of evaluations by watching the
// evals table: pending ones go to the broker, blocked ones to the blocked
// set. The first pass (and the first after a snapshot restore) loads all
// of them; later passes look only at evals modified since the last.
func (ss *schedulingServices) feedEvals(ctx context.Context) {
	var last uint64
	var prev *state.StateStore
	for {
		st := ss.srv.fsm.State()
		if st != prev {
			last, prev = 0, st
		}
		ws := memdb.NewWatchSet()
		ws.Add(st.AbandonCh())
		st.Index(ws, state.TableEvals)
		st.SchedulerConfig(ws) // wakes the loop on pause and resume
		// read from a snapshot taken after the watch is set: the list and
		// its index agree, and any later write wakes us
		snap := st.Snapshot()
		index := snap.Index(nil, state.TableEvals)
		// PauseEvalBroker is applied here, from the same snapshot as the
		// evaluations and by this one goroutine, so an evaluation written
		// after a pause is never delivered before the pause takes hold
		if cfg, err := snap.SchedulerConfig(nil); err == nil && cfg != nil {
			ss.broker.SetPaused(cfg.PauseEvalBroker)
		}
		if index > last || last == 0 {
			evals, err := snap.Evals(nil, structs.AllNamespacesSentinel, "")
			if err != nil {
				ss.logger.Error("list evaluations", "error", err)
			} else {
				var pending []*structs.Evaluation
				for _, e := range evals {
					if e.ModifyIndex <= last {
						continue
					}
					switch {
					case e.Status == structs.EvalStatusPending:
						pending = append(pending, e)
					case e.Status == structs.EvalStatusBlocked:
						ss.blocked.Block(e)
					case e.TerminalStatus():
						ss.blocked.Untrack(e.ID)
					}
				}
				ss.broker.EnqueueAll(pending)
			}
			last = max(index, 1)
		}
		if ws.WatchCtx(ctx) != nil {
			return
		}
	}
}

// A failed evaluation is retried once more by a follow-up after a delay
// spread over a range, so a fault that made every delivery fail (a leader
// that kept losing its lease, say) does not leave the job unscheduled.
const (
	failedFollowUpBaseWait = time.Minute
	failedFollowUpRange    = 5 * time.Minute
)

// reapFailed marks evals that reached the delivery limit as failed and
// creates their delayed follow-up, in one entry.
func (ss *schedulingServices) reapFailed(ctx context.Context) {
	for {
		e, token, err := ss.broker.Dequeue(ctx, []string{failedQueue})
		if err != nil {
			return
		}
		now := time.Now()
		u := e.Copy()
		u.Status = structs.EvalStatusFailed
		u.StatusDescription = fmt.Sprintf("evaluation reached delivery limit (%d)", ss.broker.cfg.DeliveryLimit)
		u.ModifyTime = now.UnixNano()
		followUp := failedFollowUp(u, generateUUID(), now, rand.N(failedFollowUpRange))
		u.NextEval = followUp.ID
		if _, err := ss.upsertEvals(u, followUp); err != nil {
			ss.logger.Warn("mark evaluation failed", "eval_id", e.ID, "error", err)
			_ = ss.broker.Nack(e.ID, token)
			continue
		}
		ss.logger.Warn("evaluation failed: delivery limit reached", "eval_id", e.ID, "job_id", e.JobID)
		_ = ss.broker.Ack(e.ID, token)
	}
}

// failedFollowUp is the evaluation that retries a failed one after
// failedFollowUpBaseWait plus jitter.
func failedFollowUp(failed *structs.Evaluation, id string, now time.Time, jitter time.Duration) *structs.Evaluation {
	return &structs.Evaluation{
		ID:           id,
		Namespace:    failed.Namespace,
		Priority:     failed.Priority,
		Type:         failed.Type,
		TriggeredBy:  structs.EvalTriggerFailedFollowUp,
		JobID:        failed.JobID,
		Status:       structs.EvalStatusPending,
		WaitUntil:    now.Add(failedFollowUpBaseWait + jitter),
		PreviousEval: failed.ID,
		CreateTime:   now.UnixNano(),
		ModifyTime:   now.UnixNano(),
	}
}

// reapSuperseded cancels evals superseded by a newer one of the same job,
// waiting in the broker or blocked.
func (ss *schedulingServices) reapSuperseded(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ss.broker.SupersededCh():
		case <-ss.blocked.dupCh:
		case <-tick.C:
		}
		old := append(ss.broker.Superseded(), ss.blocked.Duplicates()...)
		if len(old) == 0 {
			continue
		}
		now := time.Now().UnixNano()
		st := ss.srv.fsm.State()
		var upd []*structs.Evaluation
		for _, e := range old {
			cur, err := st.EvalByID(nil, e.ID)
			if err != nil || cur == nil || cur.TerminalStatus() {
				continue
			}
			c := cur.Copy()
			c.Status = structs.EvalStatusCancelled
			c.StatusDescription = "superseded by a newer evaluation of the job"
			c.ModifyTime = now
			upd = append(upd, c)
		}
		if len(upd) == 0 {
			continue
		}
		if _, err := ss.upsertEvals(upd...); err != nil {
			ss.logger.Warn("cancel superseded evaluations", "count", len(upd), "error", err)
		}
	}
}

// waitForIndex waits until the local state has applied index.
func (s *Server) waitForIndex(ctx context.Context, index uint64, timeout time.Duration) (*state.StateStore, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st := s.fsm.State()
		ws := memdb.NewWatchSet()
		ws.Add(st.AbandonCh())
		for _, t := range state.Tables {
			st.Index(ws, t)
		}
		if st.LatestIndex() >= index {
			return st, nil
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return nil, fmt.Errorf("state did not reach index %d: %w", index, err)
		}
	}
}

// worker runs evaluations from the broker through the schedulers; it is
// the scheduler's Planner for the eval it holds.
type worker struct {
	ss     *schedulingServices
	logger *slog.Logger

	ctx       context.Context
	eval      *structs.Evaluation
	token     string
	snapIndex uint64
}

var _ scheduler.Planner = (*worker)(nil)

func (w *worker) run(ctx context.Context) {
	for {
		e, token, err := w.ss.broker.Dequeue(ctx, schedulerTypes)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrBrokerDisabled) {
				return
			}
			continue
		}
		w.process(ctx, e, token)
	}
}

func (w *worker) process(ctx context.Context, e *structs.Evaluation, token string) {
	w.ctx, w.eval, w.token = ctx, e, token
	logger := w.logger.With("eval_id", e.ID, "job_id", e.JobID)
	st, err := w.ss.srv.waitForIndex(ctx, e.ModifyIndex, indexWaitTimeout)
	if err != nil {
		logger.Warn("evaluation not visible in local state", "error", err)
		_ = w.ss.broker.Nack(e.ID, token)
		return
	}
	snap := st.Snapshot()
	view := newSnapshotState(snap, &w.ss.srv.nodeLists)
	w.snapIndex = view.Index()
	sched, err := scheduler.New(e.Type, scheduler.Config{
		Logger: w.logger.With("eval_id", e.ID),
		Now:    time.Now,
		NewID:  generateUUID,
	}, view, w)
	if err == nil {
		err = sched.Process(e)
	}
	if err != nil {
		logger.Warn("evaluation failed, giving it back", "error", err)
		if nerr := w.ss.broker.Nack(e.ID, token); nerr != nil {
			logger.Debug("nack", "error", nerr)
		}
		return
	}
	if err := w.ss.broker.Ack(e.ID, token); err != nil {
		logger.Debug("ack", "error", err)
	}
}

// SubmitPlan implements scheduler.Planner.
func (w *worker) SubmitPlan(plan *structs.Plan) (*structs.PlanResult, scheduler.State, error) {
	plan.EvalID = w.eval.ID
	plan.EvalToken = w.token
	if plan.SnapshotIndex == 0 {
		plan.SnapshotIndex = w.snapIndex
	}
	if err := w.ss.broker.PauseNackTimeout(w.eval.ID, w.token); err != nil {
		return nil, nil, err
	}
	defer func() { _ = w.ss.broker.ResumeNackTimeout(w.eval.ID, w.token) }()
	pp, err := w.ss.plans.Enqueue(plan)
	if err != nil {
		return nil, nil, err
	}
	result, err := pp.Wait(w.ctx)
	if err != nil {
		return nil, nil, err
	}
	if result.RefreshIndex == 0 {
		return result, nil, nil
	}
	st, err := w.ss.srv.waitForIndex(w.ctx, max(result.RefreshIndex, result.AllocIndex), indexWaitTimeout)
	if err != nil {
		return nil, nil, err
	}
	view := newSnapshotState(st.Snapshot(), &w.ss.srv.nodeLists)
	w.snapIndex = view.Index()
	return result, view, nil
}

func (w *worker) checkToken() error {
	if !w.ss.broker.TokenValid(w.eval.ID, w.token) {
		return fmt.Errorf("%w: %s", ErrTokenMismatch, w.eval.ID)
	}
	return nil
}

// UpdateEval implements scheduler.Planner.
func (w *worker) UpdateEval(e *structs.Evaluation) error {
	if err := w.checkToken(); err != nil {
		return err
	}
	e.SnapshotIndex = w.snapIndex
	_, err := w.ss.upsertEvals(e)
	return err
}

// CreateEval implements scheduler.Planner.
func (w *worker) CreateEval(e *structs.Evaluation) error {
	if err := w.checkToken(); err != nil {
		return err
	}
	e.SnapshotIndex = w.snapIndex
	index, err := w.ss.upsertEvals(e)
	if err != nil {
		return err
	}
	if e.Status == structs.EvalStatusBlocked {
		c := e.Copy()
		c.CreateIndex, c.ModifyIndex = index, index
		w.ss.blocked.Block(c)
	}
	return nil
}

// ReblockEval implements scheduler.Planner.
func (w *worker) ReblockEval(e *structs.Evaluation) error {
	if err := w.checkToken(); err != nil {
		return err
	}
	e.SnapshotIndex = w.snapIndex
	e.Status = structs.EvalStatusBlocked
	index, err := w.ss.upsertEvals(e)
	if err != nil {
		return err
	}
	c := e.Copy()
	c.ModifyIndex = index
	w.ss.blocked.Block(c)
	return nil
}
