package allocdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestBuildLayoutAndModes(t *testing.T) {
	root := t.TempDir()
	d := New(root, "a1")
	if err := d.Build([]string{"web", "side"}); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := d.Build([]string{"web", "side"}); err != nil {
		t.Fatalf("second build: %v", err)
	}
	want := map[string]fs.FileMode{
		"a1/alloc/data":  fs.ModeDir | 0o755,
		"a1/alloc/logs":  fs.ModeDir | 0o755,
		"a1/alloc/tmp":   fs.ModeDir | fs.ModeSticky | 0o777,
		"a1/web/local":   fs.ModeDir | 0o755,
		"a1/web/secrets": fs.ModeDir | 0o700,
		"a1/web/tmp":     fs.ModeDir | fs.ModeSticky | 0o777,
		"a1/side/local":  fs.ModeDir | 0o755,
	}
	for p, mode := range want {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
		}
	}
	if d.LogDir != filepath.Join(root, "a1", "alloc", "logs") {
		t.Errorf("LogDir = %s", d.LogDir)
	}
	td := d.TaskDir("web")
	if td.SecretsDir != filepath.Join(root, "a1", "web", "secrets") {
		t.Errorf("SecretsDir = %s", td.SecretsDir)
	}
}

func TestBuildRejectsUnsafeNames(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b", "../x", "alloc", "x\x00"} {
		err := New(root, "a1").Build([]string{name})
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("task %q: err = %v, want ErrInvalidName", name, err)
		}
	}
	if err := New(root, "../evil").Build(nil); !errors.Is(err, ErrInvalidName) {
		t.Errorf("alloc id ../evil: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "evil")); err == nil {
		t.Error("created a dir outside root")
	}
}

func TestDestroyCopesWithReadOnly(t *testing.T) {
	root := t.TempDir()
	d := New(root, "a1")
	if err := d.Build([]string{"web"}); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(d.TaskDir("web").LocalDir, "ro")
	if err := os.MkdirAll(filepath.Join(ro, "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "deep", "f"), []byte("x"), 0o400); err != nil {
		t.Fatal(err)
	}
	// A symlink pointing outside must be removed, not followed.
	outside := filepath.Join(t.TempDir(), "keep")
	if err := os.WriteFile(outside, []byte("keep"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(ro, "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(ro, "deep"), ro} {
		if err := os.Chmod(p, 0o500); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(d.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("alloc dir still there: %v", err)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("symlink target touched: %v %v", fi, err)
	}
	// Destroying twice is fine.
	if err := d.Destroy(); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
}

// As root, RemoveAll ignores permissions, so check the chmod pass itself.
func TestMakeWritable(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(deep, 0o500)
	os.Chmod(filepath.Join(root, "a"), 0o100)
	makeWritable(root)
	for _, p := range []string{filepath.Join(root, "a"), deep} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o700 != 0o700 {
			t.Errorf("%s: mode %v", p, fi.Mode())
		}
	}
}

func TestDestroyRefusesOutsideRoot(t *testing.T) {
	root := t.TempDir()
	d := New(root, "a1")
	d.Dir = filepath.Dir(root) // tampered
	if err := d.Destroy(); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("err = %v, want ErrOutsideRoot", err)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/a\040b\134c`); got != `/a b\c` {
		t.Fatalf("got %q", got)
	}
}
