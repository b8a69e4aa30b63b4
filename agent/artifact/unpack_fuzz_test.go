package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpackTar unpacks a real archive of a symlink, then a file and a
// directory with fuzzed names, and checks that nothing appeared outside
// the destination and that no link left in it resolves outside.
func FuzzUnpackTar(f *testing.F) {
	for _, s := range [][4]string{
		{"l", "..", "l/x", "d"},
		{"a", ".", "a/../../x", "a/b"},
		{"l", "/etc", "l/passwd", "l"},
		{"x", "sub/../..", "x/y", "../d"},
		{"ok", "file", "file", "dir/"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, linkName, linkTarget, fileName, dirName string) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdrs := []*tar.Header{
			{Name: linkName, Typeflag: tar.TypeSymlink, Linkname: linkTarget, Mode: 0o777},
			{Name: fileName, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
			{Name: dirName, Typeflag: tar.TypeDir, Mode: 0o755},
		}
		for _, h := range hdrs {
			if tw.WriteHeader(h) != nil {
				return // names tar itself cannot encode
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte("x"))
			}
		}
		if tw.Close() != nil {
			return
		}
		top := t.TempDir()
		root := filepath.Join(top, "a", "b", "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(top, "in.tar")
		if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		_ = unpack(context.Background(), file, kindTar, root, 1<<20)

		realRoot, _ := filepath.EvalSymlinks(root)
		err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch p {
			case top, archive, filepath.Join(top, "a"), filepath.Join(top, "a", "b"), root:
				return nil
			}
			if !strings.HasPrefix(p, root+string(filepath.Separator)) {
				t.Fatalf("entry outside destination: %s", p)
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if real, err := filepath.EvalSymlinks(p); err == nil && real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
					t.Fatalf("link %s resolves outside to %s", p, real)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
