package clientapi

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// These tests drive the handler with Nomad's own Go client, the way the
// nomad CLI would through a berth server. Nomad's client first looks up
// the node (/v1/node/<id>, which 404s here) and then falls back to the
// address it was given.

func nomadClient(t *testing.T, addr string) *nomad.Client {
	t.Helper()
	c, err := nomad.NewClient(&nomad.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNomadClientLogs(t *testing.T) {
	srv, f := newServer(t)
	writeLog(t, f.logDir, "web.stdout.0", "from nomad's client\n")
	c := nomadClient(t, srv.URL)
	alloc := &nomad.Allocation{ID: "single", NodeID: "node-1"}
	cancel := make(chan struct{})
	defer close(cancel)
	frames, errs := c.AllocFS().Logs(alloc, false, "web", "stdout", "start", 0, cancel, nil)
	var got bytes.Buffer
	timeout := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case fr, ok := <-frames:
			if !ok {
				done = true
				break
			}
			got.Write(fr.Data)
		case err := <-errs:
			t.Fatal(err)
		case <-timeout:
			t.Fatal("timed out")
		}
	}
	if got.String() != "from nomad's client\n" {
		t.Fatalf("got %q", got.String())
	}
}

func TestNomadClientExecStatsSignalRestart(t *testing.T) {
	srv, f := newServer(t)
	c := nomadClient(t, srv.URL)
	alloc := &nomad.Allocation{ID: "multi", NodeID: "node-1", TaskGroup: "g"}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code, err := c.Allocations().Exec(ctx, alloc, "sidecar", false, []string{"cat", "3"},
		strings.NewReader("piped input"), &stdout, &stderr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 || stdout.String() != "PIPED INPUT" || stderr.String() != "ran cat 3 in multi/sidecar" {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}

	usage, err := c.Allocations().Stats(alloc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if usage.Tasks["web"].ResourceUsage.MemoryStats.RSS != 1000 || usage.ResourceUsage.CpuStats.Percent != 15 {
		t.Fatalf("stats %+v", usage)
	}

	if err := c.Allocations().Signal(alloc, nil, "web", "SIGHUP"); err != nil {
		t.Fatal(err)
	}
	if err := c.Allocations().Restart(alloc, "sidecar", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Allocations().Signal(&nomad.Allocation{ID: "nope"}, nil, "web", "SIGHUP"); err == nil {
		t.Fatal("signal to unknown alloc succeeded")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.signals) != 1 || f.signals[0] != "multi/web/SIGHUP" || len(f.restarts) != 1 || f.restarts[0] != "multi/sidecar/false" {
		t.Fatalf("signals %v restarts %v", f.signals, f.restarts)
	}
}
