package exec

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func requireCgroups(t *testing.T) {
	t.Helper()
	if cgroupsAvailable() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root and cgroup v1 memory and cpu controllers")
	}
	t.Skip("needs root and cgroup v1 memory and cpu controllers")
}

func TestRawExecCgroupEnforcesMemory(t *testing.T) {
	t.Parallel()
	requireCgroups(t)
	d := newRawExecDriver(t)
	// tail holds its whole input when it has no newline: ~300 MB here.
	tt := newTestTask(t, NameRawExec, "/bin/sh", "-c", "grep memory /proc/self/cgroup; head -c 300000000 /dev/zero | tail >/dev/null")
	tt.cfg.Resources.MemoryMB = 32
	tt.cfg.Resources.CPUShares = 500
	if _, err := d.StartTask(testCtx(t), tt.cfg); err != nil {
		t.Fatal(err)
	}
	res := waitExit(t, d, tt.cfg.ID, 30*time.Second)
	if !res.OOMKilled {
		t.Errorf("exit = %+v, want OOMKilled", res)
	}
	cg := rawCgroup{name: cgroupName(tt.cfg.ID)}
	if out := tt.stdout.all(t); !strings.Contains(out, rawCgroupParent+"/"+cg.name) {
		t.Errorf("task's memory cgroup = %q, want under %s", out, rawCgroupParent)
	}
	if b, err := os.ReadFile(cg.dir("cpu") + "/cpu.shares"); err != nil || strings.TrimSpace(string(b)) != "500" {
		t.Errorf("cpu.shares = %q, %v; want 500", b, err)
	}
	if err := d.DestroyTask(testCtx(t), tt.cfg.ID, false); err != nil {
		t.Fatal(err)
	}
	for _, ctl := range cgroupControllers {
		if _, err := os.Stat(cg.dir(ctl)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s cgroup left after destroy: %v", ctl, err)
		}
	}
}
