package corpus

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/containerdtest"
)

// Environment of the re-executed test process that runs inside its own
// network (and mount) namespace.
const (
	netnsChildEnv = "BERTH_CORPUS_IN_NETNS"
	berthBinEnv   = "BERTH_CORPUS_BINARY"
)

// inOwnNetns re-runs the calling test in a child process with fresh
// network and mount namespaces, so the bridge, routes and nftables table
// the network plugin installs for bridge-mode groups never touch the
// host's network, and every mount disappears with the child. It returns
// true in the child, where the test body runs; in the parent it waits for
// the child and reports its result.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsChildEnv) == "1" {
		// the new namespace's loopback is down
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("lo up: %v: %s", err, out)
		}
		// the parent's binary: used, not removed by this process's TestMain
		if b := os.Getenv(berthBinEnv); b != "" {
			berthOnce.Do(func() { berthBin = b })
			t.Cleanup(func() { berthBin = "" })
		}
		return true
	}
	containerdtest.Require(t)
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("this test needs %s: %v", tool, err)
			}
			t.Skipf("this test needs %s", tool)
		}
	}
	requireCorpus(t)
	bin := berthBinary(t)
	args := []string{"-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}
	if dl, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(dl).Round(time.Second).String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1", berthBinEnv+"="+bin)
	// CLONE_NEWNS also makes / private in the child (os/exec does that),
	// so no mount propagates back to the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("test in its own network namespace: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
		t.Fatalf("the child did not run %s", t.Name())
	}
	return false
}
