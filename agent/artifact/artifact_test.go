package artifact

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/structs"
)

type entry struct {
	name, body, link string
	typ              byte
}

func makeTar(t *testing.T, gz bool, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var tw *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link, Size: int64(len(e.body))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func makeZip(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name}
		h.SetMode(0o755)
		if e.link != "" {
			h.SetMode(fs.ModeSymlink | 0o777)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if e.link != "" {
			w.Write([]byte(e.link))
		} else {
			w.Write([]byte(e.body))
		}
	}
	zw.Close()
	return buf.Bytes()
}

// server serves files by path on 127.0.0.1 and records request headers.
func server(t *testing.T, files map[string][]byte) (*httptest.Server, *http.Header) {
	t.Helper()
	var last http.Header
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last = r.Header.Clone()
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &last
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestFetchHTTPFileWithChecksumAndHeaders(t *testing.T) {
	body := []byte("#!/bin/sh\necho hi\n")
	sum := sha256.Sum256(body)
	srv, hdr := server(t, map[string][]byte{"/bin/run.sh": body})
	dir := t.TempDir()
	env := taskenv.NewBuilder(nil, &structs.Allocation{ID: "a1"}, &structs.Task{Name: "web"}, "").Build()
	a := &structs.TaskArtifact{
		GetterSource:  srv.URL + "/bin/run.sh",
		GetterOptions: map[string]string{"checksum": "sha256:" + hex.EncodeToString(sum[:])},
		GetterHeaders: map[string]string{"X-Token": "t0k"},
	}
	if err := Fetch(ctx(t), a, dir, env); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "local", "run.sh"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("got %q %v", got, err)
	}
	if (*hdr).Get("X-Token") != "t0k" {
		t.Fatalf("header not sent: %v", *hdr)
	}

	// Mode file with an interpolated destination.
	a = &structs.TaskArtifact{GetterSource: srv.URL + "/bin/run.sh", GetterMode: "file", RelativeDest: "local/${NOMAD_ALLOC_ID}.sh"}
	if err := Fetch(ctx(t), a, dir, env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "local", "a1.sh")); err != nil {
		t.Fatal(err)
	}

	// Wrong checksum: error, nothing left behind.
	a = &structs.TaskArtifact{GetterSource: srv.URL + "/bin/run.sh?checksum=md5:00000000000000000000000000000000", RelativeDest: "other"}
	if err := Fetch(ctx(t), a, dir, env); !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other", "run.sh")); err == nil {
		t.Fatal("file kept despite checksum mismatch")
	}
	matches, _ := filepath.Glob(filepath.Join(dir, ".artifact-*"))
	if len(matches) != 0 {
		t.Fatalf("temp files left: %v", matches)
	}
	// 404.
	if err := Fetch(ctx(t), &structs.TaskArtifact{GetterSource: srv.URL + "/missing"}, dir, env); err == nil {
		t.Fatal("404 accepted")
	}
}

func TestFetchUnpacksArchives(t *testing.T) {
	tgz := makeTar(t, true, entry{name: "app/", typ: tar.TypeDir}, entry{name: "app/bin", body: "binary"},
		entry{name: "app/link", typ: tar.TypeSymlink, link: "bin"}, entry{name: "app/hard", typ: tar.TypeLink, link: "app/bin"})
	plain := makeTar(t, false, entry{name: "conf.txt", body: "conf"})
	zipped := makeZip(t, entry{name: "z/one.txt", body: "one"})
	srv, _ := server(t, map[string][]byte{"/a.tgz": tgz, "/b.tar": plain, "/c.zip": zipped})
	dir := t.TempDir()
	for _, a := range []*structs.TaskArtifact{
		{GetterSource: srv.URL + "/a.tgz"},
		{GetterSource: srv.URL + "/b.tar", GetterMode: "dir", RelativeDest: "local/conf"},
		{GetterSource: srv.URL + "/c.zip"},
	} {
		if err := Fetch(ctx(t), a, dir, nil); err != nil {
			t.Fatalf("%s: %v", a.GetterSource, err)
		}
	}
	for p, want := range map[string]string{
		"local/app/bin": "binary", "local/app/link": "binary", "local/app/hard": "binary",
		"local/conf/conf.txt": "conf", "local/z/one.txt": "one",
	} {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q %v", p, got, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "local/z/one.txt")); fi.Mode().Perm() != 0o755 {
		t.Errorf("zip mode not kept: %v", fi.Mode())
	}
	// archive=false keeps the archive as a file.
	if err := Fetch(ctx(t), &structs.TaskArtifact{GetterSource: srv.URL + "/b.tar", GetterOptions: map[string]string{"archive": "false"}, RelativeDest: "raw"}, dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raw", "b.tar")); err != nil {
		t.Fatal(err)
	}
}

func TestFetchRejectsEscapes(t *testing.T) {
	outside := t.TempDir()
	evil := map[string][]byte{
		"/dotdot.tar":  makeTar(t, false, entry{name: "../../evil", body: "x"}),
		"/abs.tar":     makeTar(t, false, entry{name: "/tmp/evil", body: "x"}),
		"/link.tar":    makeTar(t, false, entry{name: "l", typ: tar.TypeSymlink, link: outside}, entry{name: "l/evil", body: "x"}),
		"/rellink.tar": makeTar(t, false, entry{name: "l", typ: tar.TypeSymlink, link: "../../.."}),
		"/chain.tar":   makeTar(t, false, entry{name: "x", typ: tar.TypeSymlink, link: "."}, entry{name: "y", typ: tar.TypeSymlink, link: "x/.."}),
		"/hard.tar":    makeTar(t, false, entry{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}),
		"/zipslip.zip": makeZip(t, entry{name: "../evil", body: "x"}),
		"/ziplink.zip": makeZip(t, entry{name: "l", link: "/etc"}),
		"/device.tar":  makeTar(t, false, entry{name: "dev", typ: tar.TypeChar}),
	}
	srv, _ := server(t, evil)
	for name := range evil {
		dir := t.TempDir()
		err := Fetch(ctx(t), &structs.TaskArtifact{GetterSource: srv.URL + name}, dir, nil)
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: err = %v, want ErrUnsafePath", name, err)
		}
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Fatalf("wrote outside: %v", entries)
	}
	// Destinations outside the task dir, or through a planted symlink.
	dir := t.TempDir()
	if err := Fetch(ctx(t), &structs.TaskArtifact{GetterSource: srv.URL + "/x", RelativeDest: "../up"}, dir, nil); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("dest ../up: %v", err)
	}
	os.Symlink(outside, filepath.Join(dir, "local"))
	if err := Fetch(ctx(t), &structs.TaskArtifact{GetterSource: srv.URL + "/abs.tar"}, dir, nil); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("dest through symlink: %v", err)
	}
}

func TestFetchLimitsAndSources(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4096)
	bomb := makeTar(t, true, entry{name: "big", body: string(bytes.Repeat([]byte("y"), 8192))})
	srv, _ := server(t, map[string][]byte{"/big": big, "/bomb.tgz": bomb})
	dir := t.TempDir()
	opts := Options{MaxBytes: 1024}
	if err := FetchWithOptions(ctx(t), &structs.TaskArtifact{GetterSource: srv.URL + "/big"}, dir, nil, opts); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big download: %v", err)
	}
	opts.MaxBytes = 4096
	if err := FetchWithOptions(ctx(t), &structs.TaskArtifact{GetterSource: srv.URL + "/bomb.tgz"}, dir, nil, opts); !errors.Is(err, ErrTooLarge) {
		t.Errorf("bomb: %v", err)
	}
	if err := Fetch(ctx(t), &structs.TaskArtifact{GetterSource: "git::https://example.invalid/x"}, dir, nil); !errors.Is(err, ErrUnsupportedSource) {
		t.Errorf("git source: %v", err)
	}
	// file:// source.
	src := filepath.Join(t.TempDir(), "data.bin")
	os.WriteFile(src, []byte("local"), 0o600)
	if err := Fetch(ctx(t), &structs.TaskArtifact{GetterSource: "file://" + src}, dir, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "local", "data.bin")); string(got) != "local" {
		t.Fatalf("file source: %q", got)
	}
	// Cancelled context.
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Fetch(c, &structs.TaskArtifact{GetterSource: srv.URL + "/big"}, dir, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := parseChecksum("sha256:abc"); err == nil {
		t.Error("short sha256 accepted")
	}
}

func FuzzArchivePath(f *testing.F) {
	for _, s := range [][2]string{{"a/b", "c"}, {"../x", "../../y"}, {"/abs", "/etc"}, {"a/../../b", "a/.."}, {`..\x`, `..\..`}, {".", "."}, {"a\x00b", "x"}} {
		f.Add(s[0], s[1])
	}
	root := "/srv/task/local"
	f.Fuzz(func(t *testing.T, name, target string) {
		p, err := EntryPath(root, name)
		if err != nil {
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("error not ErrUnsafePath: %v", err)
			}
			return
		}
		if p != root && !bytes.HasPrefix([]byte(p), []byte(root+"/")) {
			t.Fatalf("EntryPath(%q) = %q escapes", name, p)
		}
		tgt, err := LinkTarget(root, p, target)
		if err != nil {
			return
		}
		resolved := filepath.Join(filepath.Dir(p), tgt)
		if filepath.IsAbs(tgt) || (resolved != root && !bytes.HasPrefix([]byte(resolved), []byte(root+"/"))) {
			t.Fatalf("LinkTarget(%q, %q) = %q resolves to %q", p, target, tgt, resolved)
		}
	})
}
