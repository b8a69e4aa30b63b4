package server

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/structs"
)

// The eval broker lives on the leader. A leader loop (evalFeed in
// worker.go) watches the evals table and enqueues every pending
// evaluation; workers dequeue by scheduler type, highest priority first,
// and ack or nack with the delivery token they were given. The broker
// delivers at least once: an eval that is not acked within the nack
// timeout is delivered again, and one that was delivered DeliveryLimit
// times goes to the failed queue, whose reaper marks it failed in the
// state. Evaluations of one job are serialised: while one is in flight
// (ready or unacked), later ones wait; when it is acked, the newest
// waiting one becomes ready and the older ones are superseded (handed to
// the cancel reaper).
//
// The broker holds no state that is not rebuilt from the store when
// leadership is gained.

// failedQueue is the pseudo scheduler type of evals past the delivery
// limit; only the failed-eval reaper dequeues it.
const failedQueue = "_failed"

// Broker errors.
var (
	ErrBrokerDisabled = errors.New("eval broker disabled")
	ErrTokenMismatch  = errors.New("evaluation delivery token mismatch")
	ErrEvalNotUnacked = errors.New("evaluation is not outstanding")
)

// clock is the broker's view of time, injected so tests control it.
type clock interface {
	Now() time.Time
	// AfterFunc runs f in its own goroutine after d; the returned function
	// stops the timer and reports whether it did so before f ran.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// evalBrokerConfig tunes a broker.
type evalBrokerConfig struct {
	NackTimeout   time.Duration
	DeliveryLimit int
	// Delays before a nacked eval is ready again: after the first nack,
	// and after later ones (Nomad: 1s and 20s).
	InitialNackDelay    time.Duration
	SubsequentNackDelay time.Duration
	Clock               clock
}

type jobKey struct{ namespace, id string }

func evalJobKey(e *structs.Evaluation) jobKey { return jobKey{e.Namespace, e.JobID} }

type unackedEval struct {
	eval      *structs.Evaluation
	token     string
	stopTimer func() bool
	paused    bool
}

// evalBroker: see the top of the file.
type evalBroker struct {
	cfg evalBrokerConfig

	mu      sync.Mutex
	enabled bool
	// paused holds scheduler deliveries (the scheduler configuration's
	// PauseEvalBroker); the failed queue is still served.
	paused bool
	// deliveries counts deliveries of every eval the broker tracks
	// (ready, unacked, waiting behind its job, delayed, in nack delay).
	deliveries map[string]int
	// inFlight is the one eval per job that is ready or unacked.
	inFlight map[jobKey]string
	// waiting holds a job's later evals while one is in flight.
	waiting map[jobKey]*evalHeap
	ready   map[string]*evalHeap
	unacked map[string]*unackedEval
	// delayed evals wait for WaitUntil.
	delayed     delayHeap
	delayStop   func() bool
	delayAt     time.Time
	nackDelayed map[string]func() bool
	// requeue holds evals enqueued again while their delivery is
	// outstanding (a blocked eval unblocked before its worker acked): they
	// are enqueued once acked.
	requeue      map[string]*structs.Evaluation
	cancelable   []*structs.Evaluation
	cancelNotify chan struct{}
	// readyNotify is closed (and replaced) whenever an eval becomes ready
	// or the broker is disabled: Dequeue waits on it.
	readyNotify chan struct{}
}

func newEvalBroker(cfg evalBrokerConfig) *evalBroker {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.NackTimeout <= 0 {
		cfg.NackTimeout = 60 * time.Second
	}
	if cfg.DeliveryLimit <= 0 {
		cfg.DeliveryLimit = 3
	}
	b := &evalBroker{cfg: cfg, cancelNotify: make(chan struct{}, 1), readyNotify: make(chan struct{})}
	b.reset()
	return b
}

func (b *evalBroker) reset() {
	b.deliveries = make(map[string]int)
	b.inFlight = make(map[jobKey]string)
	b.waiting = make(map[jobKey]*evalHeap)
	b.ready = make(map[string]*evalHeap)
	b.unacked = make(map[string]*unackedEval)
	b.delayed = nil
	b.nackDelayed = make(map[string]func() bool)
	b.requeue = make(map[string]*structs.Evaluation)
	b.cancelable = nil
}

// SetEnabled turns the broker on (leadership gained) or off. Turning it off
// drops everything and wakes waiting workers with ErrBrokerDisabled.
func (b *evalBroker) SetEnabled(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.enabled == on {
		return
	}
	b.enabled = on
	if !on {
		for _, u := range b.unacked {
			u.stopTimer()
		}
		for _, stop := range b.nackDelayed {
			stop()
		}
		if b.delayStop != nil {
			b.delayStop()
			b.delayStop = nil
		}
		b.reset()
		b.notifyReadyLocked()
	}
}

// Enabled reports whether the broker accepts evaluations.
func (b *evalBroker) Enabled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.enabled
}

// Enqueue adds an evaluation; one already tracked is ignored.
func (b *evalBroker) Enqueue(e *structs.Evaluation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.enqueueLocked(e)
}

// EnqueueAll adds several evaluations.
func (b *evalBroker) EnqueueAll(evals []*structs.Evaluation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range evals {
		b.enqueueLocked(e)
	}
}

func (b *evalBroker) enqueueLocked(e *structs.Evaluation) {
	if !b.enabled {
		return
	}
	if _, tracked := b.deliveries[e.ID]; tracked {
		if _, out := b.unacked[e.ID]; out {
			b.requeue[e.ID] = e
		}
		return
	}
	b.deliveries[e.ID] = 0
	if !e.WaitUntil.IsZero() && e.WaitUntil.After(b.cfg.Clock.Now()) {
		heap.Push(&b.delayed, e)
		b.armDelayTimerLocked()
		return
	}
	b.admitLocked(e)
}

// admitLocked makes e ready unless another eval of its job is in flight.
func (b *evalBroker) admitLocked(e *structs.Evaluation) {
	k := evalJobKey(e)
	if cur, busy := b.inFlight[k]; busy && cur != e.ID {
		h := b.waiting[k]
		if h == nil {
			h = &evalHeap{}
			b.waiting[k] = h
		}
		heap.Push(h, e)
		return
	}
	b.inFlight[k] = e.ID
	b.pushReadyLocked(e.Type, e)
}

func (b *evalBroker) pushReadyLocked(queue string, e *structs.Evaluation) {
	h := b.ready[queue]
	if h == nil {
		h = &evalHeap{}
		b.ready[queue] = h
	}
	heap.Push(h, e)
	b.notifyReadyLocked()
}

// SetPaused holds or resumes deliveries to scheduler workers.
func (b *evalBroker) SetPaused(paused bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused == paused {
		return
	}
	b.paused = paused
	if !paused {
		b.notifyReadyLocked()
	}
}

func (b *evalBroker) notifyReadyLocked() {
	close(b.readyNotify)
	b.readyNotify = make(chan struct{})
}

// armDelayTimerLocked points the one delay timer at the earliest WaitUntil.
func (b *evalBroker) armDelayTimerLocked() {
	if len(b.delayed) == 0 {
		return
	}
	next := b.delayed[0].WaitUntil
	if b.delayStop != nil {
		if !b.delayAt.After(next) {
			return
		}
		b.delayStop()
	}
	b.delayAt = next
	b.delayStop = b.cfg.Clock.AfterFunc(next.Sub(b.cfg.Clock.Now()), b.releaseDelayed)
}

func (b *evalBroker) releaseDelayed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delayStop = nil
	if !b.enabled {
		return
	}
	now := b.cfg.Clock.Now()
	for len(b.delayed) > 0 && !b.delayed[0].WaitUntil.After(now) {
		e := heap.Pop(&b.delayed).(*structs.Evaluation)
		b.admitLocked(e)
	}
	b.armDelayTimerLocked()
}

// Dequeue waits for an evaluation of one of the scheduler types and
// returns it with its delivery token.
func (b *evalBroker) Dequeue(ctx context.Context, types []string) (*structs.Evaluation, string, error) {
	for {
		b.mu.Lock()
		if !b.enabled {
			b.mu.Unlock()
			return nil, "", ErrBrokerDisabled
		}
		if e, token := b.takeLocked(types); e != nil {
			b.mu.Unlock()
			return e, token, nil
		}
		wait := b.readyNotify
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-wait:
		}
	}
}

func (b *evalBroker) takeLocked(types []string) (*structs.Evaluation, string) {
	var best *evalHeap
	for _, t := range types {
		if b.paused && t != failedQueue {
			continue
		}
		h := b.ready[t]
		if h == nil || h.Len() == 0 {
			continue
		}
		if best == nil || evalBefore((*h)[0], (*best)[0]) {
			best = h
		}
	}
	if best == nil {
		return nil, ""
	}
	e := heap.Pop(best).(*structs.Evaluation)
	token := generateUUID()
	u := &unackedEval{eval: e, token: token}
	u.stopTimer = b.cfg.Clock.AfterFunc(b.cfg.NackTimeout, func() { b.nackTimedOut(e.ID, token) })
	b.unacked[e.ID] = u
	b.deliveries[e.ID]++
	return e, token
}

func (b *evalBroker) nackTimedOut(evalID, token string) {
	// Nack checks the token: a timer that lost the race with an ack is a
	// no-op.
	_ = b.Nack(evalID, token)
}

// Outstanding returns the delivery token of an unacked evaluation.
func (b *evalBroker) Outstanding(evalID string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.unacked[evalID]
	if !ok {
		return "", false
	}
	return u.token, true
}

// TokenValid reports whether token is the outstanding delivery of evalID.
func (b *evalBroker) TokenValid(evalID, token string) bool {
	t, ok := b.Outstanding(evalID)
	return ok && t == token
}

func (b *evalBroker) unackedLocked(evalID, token string) (*unackedEval, error) {
	if !b.enabled {
		return nil, ErrBrokerDisabled
	}
	u, ok := b.unacked[evalID]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrEvalNotUnacked, evalID)
	}
	if u.token != token {
		return nil, fmt.Errorf("%w: %s", ErrTokenMismatch, evalID)
	}
	return u, nil
}

// PauseNackTimeout stops the ack deadline while the eval makes progress
// (its plan is in the plan queue).
func (b *evalBroker) PauseNackTimeout(evalID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.unackedLocked(evalID, token)
	if err != nil {
		return err
	}
	if !u.paused {
		u.stopTimer()
		u.paused = true
	}
	return nil
}

// ResumeNackTimeout starts a fresh ack deadline.
func (b *evalBroker) ResumeNackTimeout(evalID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.unackedLocked(evalID, token)
	if err != nil {
		return err
	}
	if u.paused {
		u.paused = false
		u.stopTimer = b.cfg.Clock.AfterFunc(b.cfg.NackTimeout, func() { b.nackTimedOut(evalID, token) })
	}
	return nil
}

// endDeliveryLocked ends the outstanding delivery named by evalID and
// token: its ack timer stops and it is no longer unacked.
func (b *evalBroker) endDeliveryLocked(evalID, token string) (*unackedEval, error) {
	u, err := b.unackedLocked(evalID, token)
	if err != nil {
		return nil, err
	}
	u.stopTimer()
	delete(b.unacked, evalID)
	return u, nil
}

// Ack completes a delivery. The newest eval waiting behind it for the same
// job becomes ready; older waiting ones are superseded.
func (b *evalBroker) Ack(evalID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.endDeliveryLocked(evalID, token)
	if err != nil {
		return err
	}
	delete(b.deliveries, evalID)
	if again, ok := b.requeue[evalID]; ok {
		delete(b.requeue, evalID)
		defer b.enqueueLocked(again)
	}
	k := evalJobKey(u.eval)
	if b.inFlight[k] == evalID {
		delete(b.inFlight, k)
	}
	h := b.waiting[k]
	if h == nil || h.Len() == 0 {
		delete(b.waiting, k)
		return nil
	}
	delete(b.waiting, k)
	newest := 0
	for i, e := range *h {
		if evalNewer(e, (*h)[newest]) {
			newest = i
		}
	}
	next := (*h)[newest]
	for i, e := range *h {
		if i != newest {
			delete(b.deliveries, e.ID)
			b.cancelable = append(b.cancelable, e)
		}
	}
	if len(*h) > 1 {
		select {
		case b.cancelNotify <- struct{}{}:
		default:
		}
	}
	b.admitLocked(next)
	return nil
}

// Nack gives a delivery back: the eval is delivered again after a delay,
// or goes to the failed queue once it reached the delivery limit.
func (b *evalBroker) Nack(evalID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.endDeliveryLocked(evalID, token)
	if err != nil {
		return err
	}
	delete(b.requeue, evalID) // it is delivered again anyway
	e := u.eval
	n := b.deliveries[evalID]
	if n >= b.cfg.DeliveryLimit {
		// It stays its job's in-flight eval until the reaper acks it.
		b.pushReadyLocked(failedQueue, e)
		return nil
	}
	delay := b.cfg.InitialNackDelay
	if n > 1 {
		delay = b.cfg.SubsequentNackDelay
	}
	if delay <= 0 {
		b.pushReadyLocked(e.Type, e)
		return nil
	}
	b.nackDelayed[evalID] = b.cfg.Clock.AfterFunc(delay, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.nackDelayed[evalID]; !ok || !b.enabled {
			return
		}
		delete(b.nackDelayed, evalID)
		b.pushReadyLocked(e.Type, e)
	})
	return nil
}

// Superseded returns and forgets the evals superseded by a newer one of
// the same job; the leader marks them canceled.
func (b *evalBroker) Superseded() []*structs.Evaluation {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.cancelable
	b.cancelable = nil
	return out
}

// SupersededCh signals that Superseded has something.
func (b *evalBroker) SupersededCh() <-chan struct{} { return b.cancelNotify }

// brokerStats counts what the broker holds.
type brokerStats struct {
	Ready, Unacked, Waiting, Delayed, Failed int
}

func (b *evalBroker) Stats() brokerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s brokerStats
	for t, h := range b.ready {
		if t == failedQueue {
			s.Failed += h.Len()
		} else {
			s.Ready += h.Len()
		}
	}
	s.Unacked = len(b.unacked)
	for _, h := range b.waiting {
		s.Waiting += h.Len()
	}
	s.Delayed = len(b.delayed) + len(b.nackDelayed)
	return s
}

// evalBefore orders ready evals: higher priority first, then FIFO.
func evalBefore(a, b *structs.Evaluation) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if a.CreateIndex != b.CreateIndex {
		return a.CreateIndex < b.CreateIndex
	}
	return a.ID < b.ID
}

// evalNewer reports whether a was created after b.
func evalNewer(a, b *structs.Evaluation) bool {
	if a.CreateIndex != b.CreateIndex {
		return a.CreateIndex > b.CreateIndex
	}
	if a.ModifyIndex != b.ModifyIndex {
		return a.ModifyIndex > b.ModifyIndex
	}
	return a.CreateTime > b.CreateTime
}

type evalHeap []*structs.Evaluation

func (h evalHeap) Len() int           { return len(h) }
func (h evalHeap) Less(i, j int) bool { return evalBefore(h[i], h[j]) }
func (h evalHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *evalHeap) Push(x any)        { *h = append(*h, x.(*structs.Evaluation)) }
func (h *evalHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

type delayHeap []*structs.Evaluation

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].WaitUntil.Equal(h[j].WaitUntil) {
		return h[i].WaitUntil.Before(h[j].WaitUntil)
	}
	return evalBefore(h[i], h[j])
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(*structs.Evaluation)) }
func (h *delayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
