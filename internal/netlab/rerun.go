package netlab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests that let a network plugin install bridges, routes and
// nftables tables run themselves again in a child process with fresh
// network and mount namespaces, so nothing they do touches the host's
// network, and every mount goes with the child.

// IsRerunChild reports whether this process is the child RerunInOwnNetns
// started (childEnv=1); in it, it brings the new namespace's loopback up.
func IsRerunChild(t *testing.T, childEnv string) bool {
	t.Helper()
	if os.Getenv(childEnv) != "1" {
		return false
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return true
}

// RequireTools skips the test when a command it needs is missing, or
// fails it when CI=true.
func RequireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("this test needs %s: %v", tool, err)
			}
			t.Skipf("this test needs %s", tool)
		}
	}
}

// RerunInOwnNetns runs the calling test again in a child of this test
// binary with new network and mount namespaces and childEnv=1 (plus env),
// waits for it (at most timeout), logs its output and fails if the child
// failed or did not run the test.
func RerunInOwnNetns(t *testing.T, childEnv string, timeout time.Duration, env ...string) {
	t.Helper()
	args := []string{"-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}
	if dl, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(dl).Round(time.Second).String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	// Unshare with CLONE_NEWNS also makes / private in the child (Go's
	// os/exec does that), so no mount propagates back to the host.
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
}
