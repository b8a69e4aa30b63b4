package bench

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestAgentBenchHelpers checks the /proc readers and flag parsing the
// agent benchmarks rely on; it needs neither root nor containerd.
func TestAgentBenchHelpers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	self := os.Getpid()
	rss, err := procRSS(self)
	if err != nil || rss < 1<<20 {
		t.Fatalf("procRSS(self) = %d, %v; want > 1 MiB", rss, err)
	}
	m, err := readProcMem(self)
	// VmRSS is RssAnon + RssFile + RssShmem
	if err != nil || m.Anon == 0 || m.File == 0 || m.Anon+m.File > m.RSS || m.Comm == "" {
		t.Errorf("readProcMem(self) = %+v, %v", m, err)
	}

	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	kids, err := descendants(self)
	if err != nil || !slices.Contains(kids, child.Process.Pid) {
		t.Errorf("descendants(self) = %v, %v; want it to hold the child %d", kids, err, child.Process.Pid)
	}
	if ppid, _, err := procParent(child.Process.Pid); err != nil || ppid != self {
		t.Errorf("procParent(child) = %d, %v; want %d", ppid, err, self)
	}
	// the group's resident pages, each counted once: listing a process
	// twice changes nothing, and two processes of one binary share pages.
	// Idle sleep processes are measured: this one's pages change as it
	// runs (the measuring itself allocates).
	if os.Geteuid() == 0 {
		sibling := exec.Command("sleep", "30")
		if err := sibling.Start(); err != nil {
			t.Fatalf("second sleep: %v", err)
		}
		t.Cleanup(func() { _ = sibling.Process.Kill(); _ = sibling.Wait() })
		a, b := child.Process.Pid, sibling.Process.Pid
		time.Sleep(100 * time.Millisecond) // both past exec and loading
		one, err := residentUnion([]int{a})
		if err != nil || one <= 0 {
			t.Errorf("residentUnion(sleep) = %d, %v", one, err)
		}
		if dup, err := residentUnion([]int{a, a}); err != nil || dup != one {
			t.Errorf("residentUnion(sleep, sleep) = %d, %v; it alone %d: its pages counted twice", dup, err, one)
		}
		other, err := residentUnion([]int{b})
		if err != nil || other <= 0 {
			t.Errorf("residentUnion(second sleep) = %d, %v", other, err)
		}
		if both, err := residentUnion([]int{a, b}); err != nil || both >= one+other || both < max(one, other) {
			t.Errorf("residentUnion(two sleeps) = %d, %v; alone %d and %d: shared pages not counted once", both, err, one, other)
		}
	}
	tree, err := measureTree(self)
	if err != nil || tree.NProcs < 1 || tree.Total() <= rss/2 {
		t.Errorf("measureTree(self) = %+v, %v", tree, err)
	}

	// CPU time must grow while this process spins; how much depends on
	// the machine's load, so only growth is asserted (bounded at 10 s).
	before := treeCPU(self)
	grew := false
	for end := time.Now().Add(10 * time.Second); !grew && time.Now().Before(end); {
		for spin := time.Now().Add(50 * time.Millisecond); time.Now().Before(spin); {
		}
		grew = treeCPU(self) > before
	}
	if !grew {
		t.Errorf("treeCPU stayed at %s over 10 s of busy loop", before)
	}

	if got, err := parseSizes("100, 500"); err != nil || !slices.Equal(got, []int{100, 500}) {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "x", "100,"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}
