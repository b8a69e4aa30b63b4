package allocdir

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// needRoot fails in CI and skips elsewhere when not root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root")
	}
	t.Skip("needs root")
}

func TestDestroyRefusesMountedTree(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	d := New(root, "a1")
	if err := d.Build([]string{"web"}); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(d.TaskDir("web").LocalDir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	keep := filepath.Join(mnt, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(); !errors.Is(err, ErrMounted) {
		t.Fatalf("err = %v, want ErrMounted", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("mounted content touched: %v", err)
	}
	if err := syscall.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	unmounted = true
	if err := d.Destroy(); err != nil {
		t.Fatal(err)
	}
}
