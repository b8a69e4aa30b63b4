package containerdproc_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/containerdproc"
)

func require(t *testing.T) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := exec.LookPath("containerd"); err != nil {
		missing = "containerd"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs %s", missing)
	}
	t.Skipf("needs %s", missing)
}

func TestConfigDisablesCRI(t *testing.T) {
	cfg := containerdproc.Config(containerdproc.Options{Root: "/r", State: "/s", Address: "/s/c.sock"})
	for _, want := range []string{"version = 2", `root = "/r"`, `address = "/s/c.sock"`, `"io.containerd.grpc.v1.cri"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := containerdproc.Start(ctx, containerdproc.Options{}); err == nil {
		t.Error("empty options must fail")
	}
	long := "/tmp/" + strings.Repeat("x", 120) + "/c.sock"
	if _, err := containerdproc.Start(ctx, containerdproc.Options{Root: "/tmp/r", State: "/tmp/s", Address: long}); err == nil {
		t.Error("an over-long socket path must fail")
	}
	if _, err := containerdproc.Start(ctx, containerdproc.Options{Binary: "berth-no-such-containerd", Root: "/tmp/r", State: "/tmp/s", Address: "/tmp/s/c.sock"}); err == nil {
		t.Error("a missing binary must fail")
	}
}

func TestStartStopRestart(t *testing.T) {
	require(t)
	dir, err := os.MkdirTemp("/tmp", "cdp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	o := containerdproc.Options{
		Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"), Address: filepath.Join(dir, "c.sock"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if containerdproc.Reachable(ctx, o.Address) {
		t.Fatal("reachable before start")
	}
	for i := 0; i < 2; i++ { // the second start reuses the root
		begin := time.Now()
		p, err := containerdproc.Start(ctx, o)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		t.Logf("start %d took %s", i, time.Since(begin))
		if p.Address() != o.Address || !containerdproc.Reachable(ctx, p.Address()) {
			t.Fatalf("start %d: not reachable at %s", i, p.Address())
		}
		if _, err := containerdproc.Start(ctx, o); err == nil {
			t.Fatal("a second containerd on the same socket must be refused")
		}
		if err := p.Stop(); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		select {
		case <-p.Exited():
		default:
			t.Fatal("Stop returned before containerd exited")
		}
		if containerdproc.Reachable(ctx, o.Address) {
			t.Fatalf("reachable after stop %d", i)
		}
	}
}
