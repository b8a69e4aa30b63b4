package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/lab"
)

// tcpFrom reports whether node from reaches addr over TCP from inside its
// namespace.
func tcpFrom(t *testing.T, l *lab.Lab, from, addr string) bool {
	t.Helper()
	c, err := l.DialFrom(from, addr, 700*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestLabUpPartitionHealDown: a lab comes up with an agreed leader and a
// ready agent; a partition cuts exactly the named node off (the others
// and the host still talk), heal restores it, and down leaves nothing
// (checked in newLab's cleanup).
func TestLabUpPartitionHealDown(t *testing.T) {
	l := newLab(t, 3, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if got, err := l.ReadyAgents(ctx); err != nil || got != 1 {
		t.Fatalf("ready agents = %d, %v", got, err)
	}
	s1, _ := l.Node("server-1")
	s2, _ := l.Node("server-2")
	s3, _ := l.Node("server-3")
	if err := l.Partition("server-1"); err != nil {
		t.Fatal(err)
	}
	// The host still reaches the partitioned node, and so does nobody else.
	if _, err := lab.Leader(ctx, s1.HTTPAddr()); err != nil {
		t.Errorf("the host cannot reach the partitioned server-1: %v", err)
	}
	if !tcpFrom(t, l, "server-2", s3.HTTPAddr()) {
		t.Error("server-2 cannot reach server-3 while only server-1 is partitioned")
	}
	if tcpFrom(t, l, "server-2", s1.HTTPAddr()) {
		t.Error("server-2 reaches the partitioned server-1")
	}
	if tcpFrom(t, l, "server-1", s2.HTTPAddr()) {
		t.Error("the partitioned server-1 reaches server-2")
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if !tcpFrom(t, l, "server-2", s1.HTTPAddr()) || !tcpFrom(t, l, "server-1", s2.HTTPAddr()) {
		t.Error("heal did not restore server-1's connectivity")
	}
	if err := l.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
