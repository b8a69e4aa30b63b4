package server

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// The drainer runs on the leader. For every draining node it marks
// allocations to migrate (DesiredTransition.Migrate, with an evaluation of
// their job in the same entry; the scheduler then stops each one and
// places its replacement elsewhere):
//
//   - service allocations as their group's migrate block allows: at most
//     max_parallel of a group migrating at once, a migration lasting until
//     its replacement runs;
//   - batch and sysbatch allocations only at the deadline (until then they
//     may finish on their own);
//   - system allocations last, once nothing else is left on the node,
//     unless the drain ignores system jobs;
//   - everything still left when the deadline passes.
//
// When nothing is left on the node the drain completes: the strategy is
// cleared, the node stays ineligible and gets a "Node drain complete"
// event. The drainer holds no state of its own: each pass reads the store
// and the next pass waits for a change of the tables it read, or for the
// nearest deadline.

const (
	// drainerRetry is the pause after a pass that failed.
	drainerRetry = 500 * time.Millisecond
	// drainerMaxWait bounds a wait without changes: a safety net should a
	// watch be missed.
	drainerMaxWait = 30 * time.Second
)

type drainer struct {
	s      *Server
	logger *slog.Logger
	now    func() time.Time
}

// startDrainer runs the drainer until ctx ends (with leadership) and
// returns the function that stops it and waits for it.
func (s *Server) startDrainer(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	d := &drainer{s: s, logger: s.logger.With("component", "drainer"), now: time.Now}
	done := make(chan struct{})
	go func() { defer close(done); d.run(ctx) }()
	return func() { cancel(); <-done }
}

func (d *drainer) run(ctx context.Context) {
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		next, err := d.pass(ws)
		wait := drainerMaxWait
		if err != nil {
			d.logger.Warn("drain pass failed", "error", err)
			wait = drainerRetry
		} else if !next.IsZero() {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		if err != nil {
			<-wctx.Done()
		} else {
			_ = ws.WatchCtx(wctx)
		}
		cancel()
	}
}

// drainWork is what one pass decided to write.
type drainWork struct {
	transitions map[string]*structs.DesiredTransition
	jobs        map[jobRef]*structs.Job
	completed   []*structs.Node
}

type jobRef struct{ ns, id string }

type groupRef struct {
	ns, job, group string
}

func (w *drainWork) mark(a *structs.Allocation, job *structs.Job) {
	yes := true
	w.transitions[a.ID] = &structs.DesiredTransition{Migrate: &yes}
	if job != nil {
		w.jobs[jobRef{job.Namespace, job.ID}] = job
	}
}

// pass makes one round of decisions and writes them. It returns the
// nearest drain deadline still ahead, if any.
func (d *drainer) pass(ws memdb.WatchSet) (time.Time, error) {
	st := d.s.State()
	nodes, err := st.Nodes(ws, "")
	if err != nil {
		return time.Time{}, err
	}
	draining := make(map[string]*structs.Node)
	for _, n := range nodes {
		if n.DrainStrategy != nil {
			draining[n.ID] = n
		}
	}
	if len(draining) == 0 {
		return time.Time{}, nil
	}
	now := d.now()
	var next time.Time
	w := &drainWork{transitions: map[string]*structs.DesiredTransition{}, jobs: map[jobRef]*structs.Job{}}
	groups := map[groupRef]bool{}
	for _, n := range sortedNodes(draining) {
		forced := false
		if dl := n.DrainStrategy.ForceDeadline; !dl.IsZero() {
			if now.Before(dl) {
				if next.IsZero() || dl.Before(next) {
					next = dl
				}
			} else {
				forced = true
			}
		}
		left, err := d.nodePass(ws, st, n, forced, w, groups)
		if err != nil {
			return next, err
		}
		if left == 0 {
			w.completed = append(w.completed, n)
		}
	}
	for _, g := range sortedGroups(groups) {
		if err := d.groupPass(ws, st, g, draining, w); err != nil {
			return next, err
		}
	}
	return next, d.write(w, now)
}

// nodePass handles one draining node: it marks what may go now (system
// allocations last, everything at the deadline), notes the service groups
// whose migrate block decides the rest, and returns how many allocations
// are left on the node.
func (d *drainer) nodePass(ws memdb.WatchSet, st *state.StateStore, n *structs.Node, forced bool, w *drainWork, groups map[groupRef]bool) (int, error) {
	allocs, err := st.AllocsByNode(ws, n.ID)
	if err != nil {
		return 0, err
	}
	left, others := 0, 0
	var system []*structs.Allocation
	var systemJobs []*structs.Job
	for _, a := range allocs {
		if a.TerminalStatus() {
			continue
		}
		job, err := allocJob(st, a)
		if err != nil {
			return 0, err
		}
		if job != nil && job.Type == structs.JobTypeSystem {
			if n.DrainStrategy.IgnoreSystemJobs {
				continue
			}
			left++
			if !a.DesiredTransition.ShouldMigrate() {
				system = append(system, a)
				systemJobs = append(systemJobs, job)
			}
			continue
		}
		left++
		others++
		switch {
		case a.DesiredTransition.ShouldMigrate():
			// on its way out
		case forced || job == nil:
			w.mark(a, job)
		case job.Type == structs.JobTypeService:
			groups[groupRef{a.Namespace, a.JobID, a.TaskGroup}] = true
		default:
			// batch and sysbatch work may finish before the deadline
		}
	}
	if others == 0 || forced {
		for i, a := range system {
			w.mark(a, systemJobs[i])
		}
	}
	return left, nil
}

// groupPass marks as many of a service group's allocations on draining
// nodes as its migrate block allows: max_parallel minus the migrations in
// flight (marked allocations on draining nodes whose replacement is not
// running yet, or not placed yet).
func (d *drainer) groupPass(ws memdb.WatchSet, st *state.StateStore, g groupRef, draining map[string]*structs.Node, w *drainWork) error {
	job, err := st.JobByID(ws, g.ns, g.job)
	if err != nil {
		return err
	}
	allocs, err := st.AllocsByJob(ws, g.ns, g.job)
	if err != nil {
		return err
	}
	var tg *structs.TaskGroup
	if job != nil {
		tg = job.LookupTaskGroup(g.group)
	}
	maxParallel := 1
	if tg != nil && tg.Migrate != nil && tg.Migrate.MaxParallel > 0 {
		maxParallel = tg.Migrate.MaxParallel
	}
	replacements := make(map[string][]*structs.Allocation)
	for _, a := range allocs {
		if a.TaskGroup == g.group && a.PreviousAllocation != "" {
			replacements[a.PreviousAllocation] = append(replacements[a.PreviousAllocation], a)
		}
	}
	inFlight := 0
	var drainable []*structs.Allocation
	for _, a := range allocs {
		if a.TaskGroup != g.group {
			continue
		}
		if _, onDraining := draining[a.NodeID]; !onDraining {
			continue
		}
		switch {
		case a.DesiredTransition.ShouldMigrate():
			if _, pending := w.transitions[a.ID]; pending || !migrationDone(replacements[a.ID]) {
				inFlight++
			}
		case !a.TerminalStatus():
			drainable = append(drainable, a)
		}
	}
	if job == nil || tg == nil {
		// the group is gone: the scheduler stops these anyway
		inFlight, maxParallel = 0, len(drainable)
	}
	sort.Slice(drainable, func(i, j int) bool { return drainable[i].CreateIndex < drainable[j].CreateIndex })
	for i := 0; i < len(drainable) && inFlight < maxParallel; i++ {
		w.mark(drainable[i], orJob(job, drainable[i].Job))
		inFlight++
	}
	return nil
}

// migrationDone reports whether a migrated allocation's replacement got
// past starting: it runs, or it already ended or was superseded.
func migrationDone(replacements []*structs.Allocation) bool {
	for _, r := range replacements {
		if r.ClientStatus != structs.AllocClientStatusPending && r.ClientStatus != "" {
			return true
		}
		if r.DesiredStatus != structs.AllocDesiredStatusRun {
			return true
		}
	}
	return false
}

// write commits the pass's marks in one entry, with an evaluation per job,
// then completes the drains of empty nodes.
func (d *drainer) write(w *drainWork, now time.Time) error {
	if len(w.transitions) > 0 {
		cmd := &fsm.AllocUpdateDesiredTransitionCommand{Allocs: w.transitions, UpdatedAt: now.UnixNano()}
		refs := make([]jobRef, 0, len(w.jobs))
		for k := range w.jobs {
			refs = append(refs, k)
		}
		sort.Slice(refs, func(i, j int) bool {
			return refs[i].ns < refs[j].ns || (refs[i].ns == refs[j].ns && refs[i].id < refs[j].id)
		})
		for _, k := range refs {
			job := w.jobs[k]
			cmd.Evals = append(cmd.Evals, d.s.newEval(job, structs.EvalTriggerNodeDrain, job.Priority, now.UnixNano()))
		}
		if _, _, err := d.s.raftApply(fsm.AllocUpdateDesiredTransitionType, cmd); err != nil {
			return fmt.Errorf("mark allocations to migrate: %w", err)
		}
		d.logger.Info("allocations marked to migrate", "allocs", len(w.transitions), "evals", len(cmd.Evals))
	}
	for _, n := range w.completed {
		// a drain changed or cancelled since this pass read it is not ours
		// to complete
		cur, err := d.s.State().NodeByID(nil, n.ID)
		if err != nil {
			return err
		}
		if cur == nil || cur.DrainStrategy == nil || !cur.DrainStrategy.StartedAt.Equal(n.DrainStrategy.StartedAt) ||
			!cur.DrainStrategy.ForceDeadline.Equal(n.DrainStrategy.ForceDeadline) {
			continue
		}
		cmd := &fsm.NodeUpdateDrainCommand{NodeID: n.ID, UpdatedAt: now.UnixNano(),
			NodeEvent: &structs.NodeEvent{Message: drainEventComplete, Subsystem: drainEventSubsystem, Timestamp: now}}
		if _, _, err := d.s.raftApply(fsm.NodeUpdateDrainType, cmd); err != nil {
			return fmt.Errorf("complete drain of node %s: %w", n.ID, err)
		}
		d.logger.Info("node drain complete", "node_id", n.ID)
	}
	return nil
}

// allocJob is the allocation's job as stored, or its own copy when the job
// was purged.
func allocJob(st *state.StateStore, a *structs.Allocation) (*structs.Job, error) {
	job, err := st.JobByID(nil, a.Namespace, a.JobID)
	if err != nil {
		return nil, err
	}
	return orJob(job, a.Job), nil
}

func orJob(job, fallback *structs.Job) *structs.Job {
	if job != nil {
		return job
	}
	return fallback
}

func sortedNodes(m map[string]*structs.Node) []*structs.Node {
	out := make([]*structs.Node, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func sortedGroups(m map[groupRef]bool) []groupRef {
	out := make([]groupRef, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ns != b.ns {
			return a.ns < b.ns
		}
		if a.job != b.job {
			return a.job < b.job
		}
		return a.group < b.group
	})
	return out
}
