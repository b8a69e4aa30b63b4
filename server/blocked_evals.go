package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// blockedEvals tracks evaluations that could not place everything (status
// blocked) until capacity may have appeared for them: a node of a class
// they may use became ready or eligible or changed, or allocations on such
// a node became terminal. Unblocking hands the eval, still "blocked", back
// to the broker; the scheduler then places what it can or reblocks it.
//
// An eval is tracked by the computed node classes it was found eligible
// or ineligible for (ClassEligibility); one that escaped class-based
// tracking (constraints on unique attributes) is unblocked by any change.
// A job has at most one blocked eval: a newer one supersedes the older,
// which the leader marks canceled.
type blockedEvals struct {
	logger  *slog.Logger
	enqueue func(*structs.Evaluation)

	mu      sync.Mutex
	enabled bool
	// captured evals are unblocked by changes in their eligible classes;
	// escaped ones by any change.
	captured map[string]*structs.Evaluation
	escaped  map[string]*structs.Evaluation
	byJob    map[jobKey]string
	// unblockIndexes records, per class, the last index at which capacity
	// may have appeared: an eval blocked on an older snapshot missed it.
	unblockIndexes map[string]uint64
	// skippedAllocs is the highest allocs-table index the capacity
	// watcher did not look at because nothing was blocked; rescanFrom asks
	// it to look again from that index when an older eval arrives.
	skippedAllocs uint64
	rescanFrom    uint64
	rescanCh      chan struct{}

	duplicates []*structs.Evaluation
	dupCh      chan struct{}
}

func newBlockedEvals(logger *slog.Logger, enqueue func(*structs.Evaluation)) *blockedEvals {
	b := &blockedEvals{
		logger:   logger,
		enqueue:  enqueue,
		rescanCh: make(chan struct{}, 1),
		dupCh:    make(chan struct{}, 1),
	}
	b.reset()
	return b
}

func (b *blockedEvals) reset() {
	b.captured = make(map[string]*structs.Evaluation)
	b.escaped = make(map[string]*structs.Evaluation)
	b.byJob = make(map[jobKey]string)
	b.unblockIndexes = make(map[string]uint64)
	b.skippedAllocs, b.rescanFrom = 0, 0
	b.duplicates = nil
}

// SetEnabled turns tracking on or off; off forgets everything.
func (b *blockedEvals) SetEnabled(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.enabled = on
	if !on {
		b.reset()
	}
}

// Block tracks a blocked evaluation (Reblock is the same operation).
func (b *blockedEvals) Block(e *structs.Evaluation) {
	var unblock *structs.Evaluation
	b.mu.Lock()
	defer func() {
		b.mu.Unlock()
		if unblock != nil {
			b.enqueue(unblock)
		}
	}()
	if !b.enabled || e.Status != structs.EvalStatusBlocked {
		return
	}
	if old := b.lookupLocked(e.ID); old != nil {
		if old.ModifyIndex >= e.ModifyIndex {
			return
		}
		b.removeLocked(old)
	}
	k := evalJobKey(e)
	if prevID, ok := b.byJob[k]; ok {
		prev := b.lookupLocked(prevID)
		if prev != nil && evalNewer(prev, e) {
			b.addDuplicateLocked(e)
			return
		}
		if prev != nil {
			b.removeLocked(prev)
			b.addDuplicateLocked(prev)
		}
	}
	if b.missedUnblockLocked(e) {
		unblock = e
		return
	}
	if e.SnapshotIndex < b.skippedAllocs && (b.rescanFrom == 0 || e.SnapshotIndex < b.rescanFrom) {
		b.rescanFrom = max(e.SnapshotIndex, 1)
		select {
		case b.rescanCh <- struct{}{}:
		default:
		}
	}
	if e.EscapedComputedClass {
		b.escaped[e.ID] = e
	} else {
		b.captured[e.ID] = e
	}
	b.byJob[k] = e.ID
}

func (b *blockedEvals) lookupLocked(id string) *structs.Evaluation {
	if e, ok := b.captured[id]; ok {
		return e
	}
	return b.escaped[id]
}

func (b *blockedEvals) removeLocked(e *structs.Evaluation) {
	delete(b.captured, e.ID)
	delete(b.escaped, e.ID)
	if k := evalJobKey(e); b.byJob[k] == e.ID {
		delete(b.byJob, k)
	}
}

func (b *blockedEvals) addDuplicateLocked(e *structs.Evaluation) {
	b.duplicates = append(b.duplicates, e)
	select {
	case b.dupCh <- struct{}{}:
	default:
	}
}

// missedUnblockLocked: capacity for e may have appeared after its snapshot.
func (b *blockedEvals) missedUnblockLocked(e *structs.Evaluation) bool {
	for class, idx := range b.unblockIndexes {
		if idx <= e.SnapshotIndex {
			continue
		}
		if e.EscapedComputedClass {
			return true
		}
		if eligible, known := e.ClassEligibility[class]; !known || eligible {
			return true
		}
	}
	return false
}

// Unblock releases the evals that may use nodes of class, as of index.
func (b *blockedEvals) Unblock(class string, index uint64) {
	b.mu.Lock()
	if !b.enabled {
		b.mu.Unlock()
		return
	}
	if index > b.unblockIndexes[class] {
		b.unblockIndexes[class] = index
	}
	var out []*structs.Evaluation
	for id, e := range b.captured {
		if eligible, known := e.ClassEligibility[class]; !known || eligible {
			out = append(out, e)
			delete(b.captured, id)
		}
	}
	for id, e := range b.escaped {
		out = append(out, e)
		delete(b.escaped, id)
	}
	for _, e := range out {
		if k := evalJobKey(e); b.byJob[k] == e.ID {
			delete(b.byJob, k)
		}
	}
	b.mu.Unlock()
	for _, e := range out {
		b.enqueue(e)
	}
}

// Untrack forgets an eval (it became terminal, or its job is gone).
func (b *blockedEvals) Untrack(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.lookupLocked(id); e != nil {
		b.removeLocked(e)
	}
}

// Len is the number of blocked evals tracked.
func (b *blockedEvals) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.captured) + len(b.escaped)
}

// Duplicates returns and forgets the superseded blocked evals.
func (b *blockedEvals) Duplicates() []*structs.Evaluation {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.duplicates
	b.duplicates = nil
	return out
}

// allocScanFrom decides what the capacity watcher scans of the allocs
// table after last, now that the table is at index: it returns the lower
// bound to scan from, or ok=false when nothing is blocked (the range is
// remembered as skipped).
func (b *blockedEvals) allocScanFrom(last, index uint64) (from uint64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from = last
	if b.rescanFrom != 0 {
		from = min(from, b.rescanFrom-1)
		b.rescanFrom = 0
	}
	if len(b.captured)+len(b.escaped) == 0 {
		b.skippedAllocs = max(b.skippedAllocs, index)
		return 0, false
	}
	return from, true
}

// minAllocScanInterval bounds how often the capacity watcher scans the
// allocs table (it has no index by modify index).
const minAllocScanInterval = 50 * time.Millisecond

// watchCapacity is the leader loop that unblocks evals: it watches the
// nodes and allocs tables until ctx ends.
func (b *blockedEvals) watchCapacity(ctx context.Context, store func() *state.StateStore) {
	var lastNodes, lastAllocs uint64
	first := true
	for {
		st := store()
		ws := memdb.NewWatchSet()
		ws.Add(st.AbandonCh())
		nodesIdx := st.Index(ws, state.TableNodes)
		allocsIdx := st.Index(ws, state.TableAllocs)
		if first {
			// Everything before leadership was seen by the evals' own
			// snapshots or is covered by loading them as blocked.
			lastNodes, lastAllocs, first = nodesIdx, allocsIdx, false
		}
		if nodesIdx > lastNodes {
			b.scanNodes(st, lastNodes)
			lastNodes = nodesIdx
		}
		from, scan := b.allocScanFrom(lastAllocs, allocsIdx)
		if scan && allocsIdx > from {
			b.scanAllocs(st, from)
		}
		lastAllocs = allocsIdx
		ws.Add(b.rescanCh)
		if ws.WatchCtx(ctx) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(minAllocScanInterval):
		}
	}
}

func (b *blockedEvals) scanNodes(st *state.StateStore, after uint64) {
	nodes, err := st.Nodes(nil, "")
	if err != nil {
		b.logger.Warn("blocked evals: list nodes", "error", err)
		return
	}
	for _, n := range nodes {
		if n.ModifyIndex <= after {
			continue
		}
		if n.Status == structs.NodeStatusReady && n.SchedulingEligibility != structs.NodeSchedulingIneligible {
			b.Unblock(n.ComputedClass, n.ModifyIndex)
		}
	}
}

func (b *blockedEvals) scanAllocs(st *state.StateStore, after uint64) {
	allocs, err := st.Allocs(nil, structs.AllNamespacesSentinel, "")
	if err != nil {
		b.logger.Warn("blocked evals: list allocs", "error", err)
		return
	}
	freed := make(map[string]uint64)
	for _, a := range allocs {
		if a.ModifyIndex > after && a.TerminalStatus() && a.ModifyIndex > freed[a.NodeID] {
			freed[a.NodeID] = a.ModifyIndex
		}
	}
	classes := make(map[string]uint64)
	for nodeID, idx := range freed {
		n, err := st.NodeByID(nil, nodeID)
		if err != nil || n == nil {
			continue
		}
		classes[n.ComputedClass] = max(classes[n.ComputedClass], idx)
	}
	for class, idx := range classes {
		b.Unblock(class, idx)
	}
}
