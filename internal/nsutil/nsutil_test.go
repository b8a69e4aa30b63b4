package nsutil

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netns"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("network namespaces need root, and CI=true")
	}
	t.Skip("network namespaces need root")
}

func TestNamedNamespace(t *testing.T) {
	needRoot(t)
	path := filepath.Join(t.TempDir(), "netns", "test")
	if err := CreateNamed(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = RemoveNamed(path) })
	if err := CreateNamed(path); err == nil {
		t.Fatal("a second namespace at the same path was made")
	}

	hostNS, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer hostNS.Close()
	var inside []net.Interface
	if err := Run(path, func() (err error) { inside, err = net.Interfaces(); return err }); err != nil {
		t.Fatal(err)
	}
	// a new namespace has only its loopback
	if len(inside) != 1 || inside[0].Name != "lo" {
		t.Fatalf("interfaces in the new namespace: %v", inside)
	}
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(hostNS) {
		t.Fatal("the calling thread was left in another namespace")
	}

	boom := errors.New("boom")
	if err := Run(path, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	ran := false
	if err := Run("", func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf(`Run("") ran=%v err=%v`, ran, err)
	}
	if err := Run(filepath.Join(t.TempDir(), "none"), func() error { return nil }); err == nil {
		t.Fatal("a missing namespace was entered")
	}

	if err := RemoveNamed(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace file left behind: %v", err)
	}
	if err := RemoveNamed(path); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}
