package containerdtest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestAppPackage is the import path of the program inside the test image.
const TestAppPackage = "github.com/berth-dev/berth/internal/containerdtest/testapp"

// RegistryServer is an in-process OCI registry on 127.0.0.1.
type RegistryServer struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Username and Password, when set, are required (HTTP basic auth) by
	// every request; BuildTestImage uses them to push.
	Username, Password string
	server             *httptest.Server
}

// Registry starts an in-memory registry that lives until the test ends.
func Registry(t testing.TB) *RegistryServer {
	t.Helper()
	return RegistryWithAuth(t, "", "")
}

// RegistryWithAuth is Registry requiring basic auth user:pass (none when
// both are empty).
func RegistryWithAuth(t testing.TB, user, pass string) *RegistryServer {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" || pass != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &RegistryServer{Host: strings.TrimPrefix(srv.URL, "http://"), Username: user, Password: pass, server: srv}
}

var (
	buildOnce  sync.Once
	buildBytes []byte
	buildErr   error
)

// TestAppBinary compiles testapp (static, CGO_ENABLED=0) once per test
// binary (kept in memory) and returns the path of a copy in t.TempDir().
func TestAppBinary(t testing.TB) string {
	t.Helper()
	bin := testAppBytes(t)
	path := filepath.Join(t.TempDir(), "testapp")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	return path
}

func testAppBytes(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-testapp-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "testapp")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, TestAppPackage)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build testapp: %v\n%s", err, b)
			return
		}
		buildBytes, buildErr = os.ReadFile(out)
	})
	if buildErr != nil {
		t.Fatalf("containerdtest: %v", buildErr)
	}
	return buildBytes
}

// TestImage returns the test image: one layer holding /testapp (the
// entrypoint), /etc/passwd, /etc/group and /tmp.
func TestImage(t testing.TB) v1.Image {
	t.Helper()
	layerTar, err := imageLayerTar(testAppBytes(t))
	if err != nil {
		t.Fatalf("containerdtest: layer: %v", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("containerdtest: layer: %v", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatalf("containerdtest: image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("containerdtest: image config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/testapp"}
	cf.Config.Env = []string{"PATH=/", "TESTAPP_IMAGE=1"}
	cf.Config.WorkingDir = "/"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("containerdtest: image config: %v", err)
	}
	return img
}

func imageLayerTar(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []string{"etc/", "tmp/", "alloc/", "local/", "secrets/"}
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"testapp", 0o755, bin},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/:/testapp\nnobody:x:65534:65534:nobody:/:/testapp\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
		{"etc/hosts", 0o644, []byte("127.0.0.1 localhost\n")},
		{"etc/resolv.conf", 0o644, nil},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BuildTestImage pushes the test image as reg.Host/repo:tag and returns
// that reference.
func BuildTestImage(t testing.TB, reg *RegistryServer, repo, tag string) string {
	t.Helper()
	refStr := reg.Host + "/" + repo + ":" + tag
	ref, err := name.ParseReference(refStr, name.Insecure)
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	var opts []remote.Option
	if reg.Username != "" || reg.Password != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password}))
	}
	if err := remote.Write(ref, TestImage(t), opts...); err != nil {
		t.Fatalf("containerdtest: push %s: %v", refStr, err)
	}
	return refStr
}

// WriteOCIArchive writes the test image as an OCI image-layout tar at path
// (index.json, oci-layout, blobs/), its manifest annotated with
// org.opencontainers.image.ref.name "latest".
func WriteOCIArchive(t testing.TB, path string) {
	t.Helper()
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("containerdtest: layout: %v", err)
	}
	if err := lp.AppendImage(TestImage(t), layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": "latest",
	})); err != nil {
		t.Fatalf("containerdtest: layout: %v", err)
	}
	if err := tarDir(dir, path); err != nil {
		t.Fatalf("containerdtest: archive: %v", err)
	}
}

func tarDir(dir, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
