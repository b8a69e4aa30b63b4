package server

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

// fakeClock is a manual clock: timers fire only in Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at            time.Time
	f             func()
	stopped, done bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.stopped || t.done {
			return false
		}
		t.stopped = true
		return true
	}
}

// Advance moves the clock and runs the timers that came due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.stopped && !t.done && !t.at.After(c.now) {
			t.done = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

func testBroker(t *testing.T) (*evalBroker, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	b := newEvalBroker(evalBrokerConfig{
		NackTimeout:         time.Minute,
		DeliveryLimit:       3,
		InitialNackDelay:    time.Second,
		SubsequentNackDelay: 20 * time.Second,
		Clock:               clk,
	})
	b.SetEnabled(true)
	return b, clk
}

var evalSeq uint64

func mkEval(job string, priority int, typ string) *structs.Evaluation {
	evalSeq++
	return &structs.Evaluation{
		ID: generateUUID(), Namespace: "default", JobID: job, Priority: priority, Type: typ,
		Status: structs.EvalStatusPending, CreateIndex: evalSeq, ModifyIndex: evalSeq,
	}
}

// tryDequeue dequeues without waiting (long).
func tryDequeue(t *testing.T, b *evalBroker, types ...string) (*structs.Evaluation, string) {
	t.Helper()
	if len(types) == 0 {
		types = schedulerTypes
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	e, token, err := b.Dequeue(ctx, types)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, ""
	}
	if err != nil {
		t.Fatalf("dequeue: %v", err)
	}
	return e, token
}

func mustDequeue(t *testing.T, b *evalBroker, types ...string) (*structs.Evaluation, string) {
	t.Helper()
	e, token := tryDequeue(t, b, types...)
	if e == nil {
		t.Fatalf("nothing to dequeue; stats %+v", b.Stats())
	}
	return e, token
}

func TestEvalBrokerPriorityAndTypes(t *testing.T) {
	b, _ := testBroker(t)
	low := mkEval("a", 10, structs.JobTypeService)
	high := mkEval("b", 90, structs.JobTypeService)
	mid := mkEval("c", 50, structs.JobTypeBatch)
	midLater := mkEval("d", 50, structs.JobTypeBatch)
	b.EnqueueAll([]*structs.Evaluation{low, midLater, high, mid})
	b.Enqueue(high) // already tracked: ignored

	if e, _ := mustDequeue(t, b, structs.JobTypeBatch); e.ID != mid.ID {
		t.Fatalf("batch dequeue got job %s, want c (FIFO within a priority)", e.JobID)
	}
	var got []string
	for i := 0; i < 3; i++ {
		e, _ := mustDequeue(t, b)
		got = append(got, e.JobID)
	}
	if want := []string{"b", "d", "a"}; !equalStrings(got, want) {
		t.Fatalf("dequeue order %v, want %v", got, want)
	}
	if e, _ := tryDequeue(t, b); e != nil {
		t.Fatalf("dequeued %s from an empty broker", e.JobID)
	}
	if s := b.Stats(); s.Unacked != 4 || s.Ready != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestEvalBrokerPerJobSerialization(t *testing.T) {
	b, _ := testBroker(t)
	first := mkEval("web", 50, structs.JobTypeService)
	second := mkEval("web", 50, structs.JobTypeService)
	third := mkEval("web", 50, structs.JobTypeService)
	other := mkEval("db", 50, structs.JobTypeService)
	b.EnqueueAll([]*structs.Evaluation{first, second, third, other})

	e1, tok1 := mustDequeue(t, b)
	e2, tok2 := mustDequeue(t, b)
	if e1.ID != first.ID || e2.ID != other.ID {
		t.Fatalf("got %s/%s, want first web eval then db", e1.JobID, e2.JobID)
	}
	if e, _ := tryDequeue(t, b); e != nil {
		t.Fatalf("second eval of job web delivered while the first is in flight")
	}
	if s := b.Stats(); s.Waiting != 2 {
		t.Fatalf("stats %+v, want 2 waiting", s)
	}
	if err := b.Ack(e1.ID, tok1); err != nil {
		t.Fatal(err)
	}
	e3, tok3 := mustDequeue(t, b)
	if e3.ID != third.ID {
		t.Fatalf("after ack got eval %s, want the newest waiting one", e3.ID)
	}
	sup := b.Superseded()
	if len(sup) != 1 || sup[0].ID != second.ID {
		t.Fatalf("superseded %v, want the middle eval", sup)
	}
	select {
	case <-b.SupersededCh():
	default:
		t.Fatal("superseded channel not signalled")
	}
	for _, d := range []struct{ id, tok string }{{e2.ID, tok2}, {e3.ID, tok3}} {
		if err := b.Ack(d.id, d.tok); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.Stats(); s != (brokerStats{}) {
		t.Fatalf("broker not empty: %+v", s)
	}
}

func TestEvalBrokerAckNackTokens(t *testing.T) {
	b, _ := testBroker(t)
	e := mkEval("web", 50, structs.JobTypeService)
	b.Enqueue(e)
	got, tok := mustDequeue(t, b)
	if !b.TokenValid(got.ID, tok) || b.TokenValid(got.ID, "other") {
		t.Fatal("token validity wrong")
	}
	if err := b.Ack(got.ID, "wrong"); !errors.Is(err, ErrTokenMismatch) {
		t.Fatalf("ack with wrong token: %v", err)
	}
	if err := b.Nack("nope", tok); !errors.Is(err, ErrEvalNotUnacked) {
		t.Fatalf("nack unknown eval: %v", err)
	}
	if err := b.Ack(got.ID, tok); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(got.ID, tok); !errors.Is(err, ErrEvalNotUnacked) {
		t.Fatalf("double ack: %v", err)
	}
}

func TestEvalBrokerNackRedeliveryAndDeliveryLimit(t *testing.T) {
	b, clk := testBroker(t)
	e := mkEval("web", 50, structs.JobTypeService)
	waiting := mkEval("web", 50, structs.JobTypeService)
	b.EnqueueAll([]*structs.Evaluation{e, waiting})

	_, tok := mustDequeue(t, b)
	if err := b.Nack(e.ID, tok); err != nil {
		t.Fatal(err)
	}
	if got, _ := tryDequeue(t, b); got != nil {
		t.Fatalf("nacked eval redelivered before its delay (got %s)", got.ID)
	}
	clk.Advance(time.Second)
	got, tok := mustDequeue(t, b)
	if got.ID != e.ID {
		t.Fatalf("redelivered %s, want the nacked eval (the job's in-flight eval)", got.ID)
	}
	if err := b.Nack(e.ID, tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if got, _ := tryDequeue(t, b); got != nil {
		t.Fatal("second nack must wait the subsequent delay")
	}
	clk.Advance(20 * time.Second)
	_, tok = mustDequeue(t, b)
	if err := b.Nack(e.ID, tok); err != nil {
		t.Fatal(err)
	}
	// third delivery nacked: delivery limit reached
	if got, _ := tryDequeue(t, b); got != nil {
		t.Fatal("eval past the delivery limit delivered to a scheduler")
	}
	failed, ftok := mustDequeue(t, b, failedQueue)
	if failed.ID != e.ID {
		t.Fatalf("failed queue has %s", failed.ID)
	}
	if err := b.Ack(failed.ID, ftok); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustDequeue(t, b); got.ID != waiting.ID {
		t.Fatal("the job's next eval was not released after the failed one")
	}
}

func TestEvalBrokerNackTimeout(t *testing.T) {
	b, clk := testBroker(t)
	e := mkEval("web", 50, structs.JobTypeService)
	b.Enqueue(e)
	_, tok := mustDequeue(t, b)
	clk.Advance(59 * time.Second)
	if !b.TokenValid(e.ID, tok) {
		t.Fatal("delivery expired early")
	}
	if err := b.PauseNackTimeout(e.ID, tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	if !b.TokenValid(e.ID, tok) {
		t.Fatal("paused delivery expired")
	}
	if err := b.ResumeNackTimeout(e.ID, tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute) // timeout → nack → 1s delay
	if b.TokenValid(e.ID, tok) {
		t.Fatal("delivery did not expire after the nack timeout")
	}
	clk.Advance(time.Second)
	got, tok2 := mustDequeue(t, b)
	if got.ID != e.ID || tok2 == tok {
		t.Fatalf("redelivery: %s token reused=%v", got.ID, tok2 == tok)
	}
	if err := b.Ack(e.ID, tok); !errors.Is(err, ErrTokenMismatch) {
		t.Fatalf("ack with the expired token: %v", err)
	}
}

func TestEvalBrokerDelayedEvals(t *testing.T) {
	b, clk := testBroker(t)
	later := mkEval("a", 50, structs.JobTypeService)
	later.WaitUntil = clk.Now().Add(10 * time.Second)
	sooner := mkEval("b", 50, structs.JobTypeService)
	sooner.WaitUntil = clk.Now().Add(5 * time.Second)
	past := mkEval("c", 50, structs.JobTypeService)
	past.WaitUntil = clk.Now().Add(-time.Second)
	b.EnqueueAll([]*structs.Evaluation{later, sooner, past})

	if got, _ := mustDequeue(t, b); got.ID != past.ID {
		t.Fatal("an eval whose WaitUntil passed must be ready at once")
	}
	if got, _ := tryDequeue(t, b); got != nil {
		t.Fatalf("delayed eval %s delivered early", got.JobID)
	}
	clk.Advance(5 * time.Second)
	if got, _ := mustDequeue(t, b); got.ID != sooner.ID {
		t.Fatal("want the 5s eval")
	}
	if got, _ := tryDequeue(t, b); got != nil {
		t.Fatal("10s eval delivered at 5s")
	}
	clk.Advance(5 * time.Second)
	if got, _ := mustDequeue(t, b); got.ID != later.ID {
		t.Fatal("want the 10s eval")
	}
}

func TestEvalBrokerRequeueWhileOutstanding(t *testing.T) {
	b, _ := testBroker(t)
	e := mkEval("web", 50, structs.JobTypeService)
	b.Enqueue(e)
	_, tok := mustDequeue(t, b)
	b.Enqueue(e) // e.g. unblocked while its worker still holds it
	if got, _ := tryDequeue(t, b); got != nil {
		t.Fatal("delivered twice at once")
	}
	if err := b.Ack(e.ID, tok); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustDequeue(t, b); got.ID != e.ID {
		t.Fatal("requeued eval not delivered after the ack")
	}
}

func TestEvalBrokerDisable(t *testing.T) {
	b, _ := testBroker(t)
	b.Enqueue(mkEval("web", 50, structs.JobTypeService))
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Dequeue(context.Background(), []string{structs.JobTypeBatch})
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	b.SetEnabled(false)
	select {
	case err := <-done:
		if !errors.Is(err, ErrBrokerDisabled) {
			t.Fatalf("dequeue on disabled broker: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting dequeue not woken by disable")
	}
	if s := b.Stats(); s != (brokerStats{}) {
		t.Fatalf("disabled broker holds %+v", s)
	}
	b.Enqueue(mkEval("web", 50, structs.JobTypeService))
	if s := b.Stats(); s != (brokerStats{}) {
		t.Fatal("disabled broker accepted an eval")
	}
}

// TestEvalBrokerConcurrent: many workers, many jobs; every eval is acked
// exactly once and no two evals of a job are ever in flight together.
func TestEvalBrokerConcurrent(t *testing.T) {
	b, _ := testBroker(t)
	const jobs, perJob = 20, 10
	var mu sync.Mutex
	inFlight := map[string]bool{}
	acked := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				e, tok, err := b.Dequeue(ctx, schedulerTypes)
				if err != nil {
					return
				}
				mu.Lock()
				if inFlight[e.JobID] {
					t.Errorf("two evals of job %s in flight", e.JobID)
				}
				inFlight[e.JobID] = true
				mu.Unlock()
				time.Sleep(100 * time.Microsecond)
				mu.Lock()
				inFlight[e.JobID] = false
				acked++
				mu.Unlock()
				if err := b.Ack(e.ID, tok); err != nil {
					t.Errorf("ack: %v", err)
				}
			}
		}()
	}
	for i := 0; i < perJob; i++ {
		for j := 0; j < jobs; j++ {
			b.Enqueue(mkEval(string(rune('a'+j)), 50, structs.JobTypeService))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := b.Stats()
		if s.Ready+s.Unacked+s.Waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not drain: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	superseded := len(b.Superseded())
	if acked+superseded != jobs*perJob {
		t.Fatalf("acked %d + superseded %d != %d enqueued", acked, superseded, jobs*perJob)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
