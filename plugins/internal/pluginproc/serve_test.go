package pluginproc

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestWatchParentExitsWhenReparented: given a parent PID that is not the
// real one (as after the agent died and init adopted the plugin), exit
// is called; given the real one, it is not.
func TestWatchParentExitsWhenReparented(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	exited := make(chan struct{})
	go WatchParent(t.Context(), logger, os.Getppid()+1_000_000, 10*time.Millisecond, func() { close(exited) })
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("exit not called within 5s for a changed parent")
	}

	ctx, cancel := context.WithCancel(t.Context())
	returned := make(chan struct{})
	stay := make(chan struct{}, 1)
	go func() {
		defer close(returned)
		WatchParent(ctx, logger, os.Getppid(), 10*time.Millisecond, func() { stay <- struct{}{} })
	}()
	select {
	case <-stay:
		t.Fatal("exit called while the parent lives")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchParent did not return within 5s of its context ending")
	}
}
