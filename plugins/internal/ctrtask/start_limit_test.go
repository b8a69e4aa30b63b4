package ctrtask

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStartSlotsAreBounded(t *testing.T) {
	if n := startLimit(); n < 8 || n > 64 {
		t.Fatalf("startLimit() = %d, want within [8, 64]", n)
	}
	r := &Runtime{starts: make(chan struct{}, 2)}
	ctx := context.Background()
	rel1, err := r.acquireStart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.acquireStart(ctx); err != nil {
		t.Fatal(err)
	}
	// a third start waits: it gives up with its context
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := r.acquireStart(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third start with both slots taken: %v, want DeadlineExceeded", err)
	}
	// and gets the slot a finished start releases
	got := make(chan error, 1)
	go func() {
		_, err := r.acquireStart(ctx)
		got <- err
	}()
	rel1()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a released slot was not handed to the waiting start")
	}
}
