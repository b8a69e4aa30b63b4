package server

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/berth-dev/berth/structs"
)

// planQueue is the leader's queue of plans submitted by workers, in
// priority order (FIFO within a priority). The plan applier is its only
// consumer; each plan has a future its worker waits on.
type planQueue struct {
	mu      sync.Mutex
	enabled bool
	heap    planHeap
	seq     uint64
	notify  chan struct{}
}

// pendingPlan is a plan and the future of its result.
type pendingPlan struct {
	plan     *structs.Plan
	enqueued time.Time
	seq      uint64

	once   sync.Once
	done   chan struct{}
	result *structs.PlanResult
	err    error
}

func (p *pendingPlan) respond(r *structs.PlanResult, err error) {
	p.once.Do(func() {
		p.result, p.err = r, err
		close(p.done)
	})
}

// Wait blocks until the plan was applied or refused, or ctx ends.
func (p *pendingPlan) Wait(ctx context.Context) (*structs.PlanResult, error) {
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func newPlanQueue() *planQueue {
	return &planQueue{notify: make(chan struct{}, 1)}
}

// SetEnabled turns the queue on or off; off refuses what is queued.
func (q *planQueue) SetEnabled(on bool) {
	q.mu.Lock()
	q.enabled = on
	var drop planHeap
	if !on {
		drop, q.heap = q.heap, nil
	}
	q.mu.Unlock()
	for _, p := range drop {
		p.respond(nil, ErrNotLeader)
	}
}

// Enqueue adds a plan and returns its future.
func (q *planQueue) Enqueue(plan *structs.Plan) (*pendingPlan, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.enabled {
		return nil, ErrNotLeader
	}
	q.seq++
	p := &pendingPlan{plan: plan, enqueued: time.Now(), seq: q.seq, done: make(chan struct{})}
	heap.Push(&q.heap, p)
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return p, nil
}

// Dequeue waits for the next plan.
func (q *planQueue) Dequeue(ctx context.Context) (*pendingPlan, error) {
	for {
		q.mu.Lock()
		if q.heap.Len() > 0 {
			p := heap.Pop(&q.heap).(*pendingPlan)
			q.mu.Unlock()
			return p, nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.notify:
		}
	}
}

// Len is the number of queued plans.
func (q *planQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.heap.Len()
}

type planHeap []*pendingPlan

func (h planHeap) Len() int { return len(h) }
func (h planHeap) Less(i, j int) bool {
	if h[i].plan.Priority != h[j].plan.Priority {
		return h[i].plan.Priority > h[j].plan.Priority
	}
	return h[i].seq < h[j].seq
}
func (h planHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *planHeap) Push(x any)   { *h = append(*h, x.(*pendingPlan)) }
func (h *planHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}
