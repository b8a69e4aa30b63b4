package containerdtest

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestTestAppVerbs(t *testing.T) {
	bin := TestAppBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "print", "out", "err", "write", filepath.Join(dir, "f"), "text", "ls", dir, "exit", "3")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v, want code 3", err)
	}
	if stdout.String() != "out\nf\n" || stderr.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	cat := exec.Command(bin, "cat")
	cat.Stdin = strings.NewReader("piped")
	if b, err := cat.Output(); err != nil || string(b) != "piped" {
		t.Fatalf("cat: %q, %v", b, err)
	}
	if err := exec.Command(bin, "print", "a", "b", "bogus").Run(); err == nil {
		t.Fatal("an unknown verb after a known one must fail")
	}
}

// A command line that does not start with a verb (a real job's own args,
// or none) runs as a service until SIGTERM or SIGINT, then exits 0.
func TestTestAppServiceStandIn(t *testing.T) {
	bin := TestAppBinary(t)
	for _, tc := range []struct {
		args []string
		sig  syscall.Signal
	}{
		{[]string{"--port", "6379", "--save", ""}, syscall.SIGTERM},
		{nil, syscall.SIGINT},
	} {
		cmd := exec.Command(bin, tc.args...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// the line is printed once the signal handler is installed
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if want := "testapp service: " + strings.Join(tc.args, " ") + "\n"; err != nil || line != want {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("args %q: first line %q, %v; want %q", tc.args, line, err, want)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("args %q: exited before a signal: %v", tc.args, err)
		case <-time.After(200 * time.Millisecond):
		}
		if err := cmd.Process.Signal(tc.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("args %q: after %v: %v, want exit 0", tc.args, tc.sig, err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("args %q: still running 10s after %v", tc.args, tc.sig)
		}
	}
}

func TestRegistryRoundTripAndArchive(t *testing.T) {
	reg := Registry(t)
	ref := BuildTestImage(t, reg, "berth/app", "v1")
	if !strings.HasPrefix(ref, "127.0.0.1:") {
		t.Fatalf("reference %q is not on loopback", ref)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/testapp" {
		t.Fatalf("config %+v, %v", cf, err)
	}
	path := filepath.Join(t.TempDir(), "img.tar")
	WriteOCIArchive(t, path)
	dir := t.TempDir()
	if err := exec.Command("tar", "-xf", path, "-C", dir).Run(); err != nil {
		t.Fatalf("untar: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "latest" {
		t.Fatalf("index %+v, %v", m, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Fatal(err)
	}
}
