package ctrtask_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/oci"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/ctrtask"
)

// shimPids lists the containerd shims serving namespace ns.
func shimPids(t *testing.T, ns string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-namespace" && args[i+1] == ns {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

func waitShims(t *testing.T, ns string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := shimPids(t, ns)
		if len(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d shims serve namespace %s (%v), want %d", len(got), ns, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShimGroup: tasks of one group share one shim, created at once
// without a second shim appearing, stay controllable one by one, and the
// shim goes with the group's last task.
func TestShimGroup(t *testing.T) {
	e := setup(t)
	img := e.h.ImportTestImage(t, "docker.io/berth/testapp:latest", "")
	start := func(id, group string) {
		cfg, _ := e.taskConfig(t, id)
		if _, err := e.rt.Start(e.ctx, cfg, ctrtask.CreateOptions{Image: img, ShimGroup: group,
			SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "sleep", "1h")}}); err != nil {
			t.Errorf("start %s: %v", id, err)
		}
	}
	var wg sync.WaitGroup
	grouped := []string{"pod/a", "pod/b", "pod/c"}
	for _, id := range grouped {
		wg.Add(1)
		go func() { defer wg.Done(); start(id, "test-pod") }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); start("lone/x", "") }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitShims(t, e.h.Namespace, 2) // the group's and the lone task's

	// one task of the group stops and goes; its siblings keep running
	if err := e.rt.Stop(e.ctx, "pod/a", 5*time.Second, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Destroy(e.ctx, "pod/a", false); err != nil {
		t.Fatal(err)
	}
	for _, id := range grouped[1:] {
		st, err := e.rt.Inspect(e.ctx, id)
		if err != nil || st.State != driver.TaskStateRunning {
			t.Fatalf("%s after its sibling went: %+v, %v", id, st, err)
		}
	}
	if err := e.rt.Signal(e.ctx, "pod/b", "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	if res, err := e.rt.Wait(e.ctx, "pod/b"); err != nil || res.Signal != 9 {
		t.Fatalf("pod/b killed: %+v, %v", res, err)
	}
	waitShims(t, e.h.Namespace, 2)

	for _, id := range []string{"pod/b", "pod/c", "lone/x"} {
		if err := e.rt.Destroy(e.ctx, id, true); err != nil {
			t.Fatal(fmt.Errorf("destroy %s: %w", id, err))
		}
	}
	waitShims(t, e.h.Namespace, 0)
}

// TestShimGroupConcurrentDestroy: a group's tasks destroyed all at once
// (an allocation stopping) all go, with their containers, and so does
// their shim. runc's shim exits once it serves no container, so a delete
// racing a sibling's shutdown must not fail with the shim's connection.
func TestShimGroupConcurrentDestroy(t *testing.T) {
	e := setup(t)
	img := e.h.ImportTestImage(t, "docker.io/berth/testapp:latest", "")
	const rounds, tasks = 4, 3
	for round := range rounds {
		group := fmt.Sprintf("alloc-%d", round)
		var ids []string
		for i := range tasks {
			id := fmt.Sprintf("%s/t%d", group, i)
			cfg, _ := e.taskConfig(t, id)
			if _, err := e.rt.Start(e.ctx, cfg, ctrtask.CreateOptions{Image: img, ShimGroup: group,
				SpecOpts: []oci.SpecOpts{oci.WithProcessArgs("/testapp", "sleep", "1h")}}); err != nil {
				t.Fatalf("round %d: start %s: %v", round, id, err)
			}
			ids = append(ids, id)
		}
		waitShims(t, e.h.Namespace, 1)
		var wg sync.WaitGroup
		errs := make([]error, len(ids))
		for i, id := range ids {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = e.rt.Destroy(e.ctx, id, true) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: destroy %s: %v", round, ids[i], err)
			}
		}
		waitShims(t, e.h.Namespace, 0)
		containers, err := e.h.Client().Containers(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(containers) != 0 {
			t.Fatalf("round %d: %d containers left after destroying the group", round, len(containers))
		}
	}
}
