package containerd_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/plugins/driver"
)

func TestImageSources(t *testing.T) {
	f := newFixture(t)

	t.Run("mirror for docker.io", func(t *testing.T) {
		containerdtest.BuildTestImage(t, f.reg, "library/redis", "7")
		f.pcfg.Containerd.Mirrors = map[string][]string{"docker.io": {"http://" + f.reg.Host}}
		d := f.newDriver(t)
		cfg, out, _ := f.taskConfig(t, "redis", map[string]any{"image": "redis:7", "args": []string{"print", "from-mirror", "-"}})
		if _, err := d.StartTask(f.ctx, cfg); err != nil {
			t.Fatal(err)
		}
		defer d.DestroyTask(f.ctx, cfg.ID, true)
		res, err := d.WaitTask(f.ctx, cfg.ID)
		if err != nil || !res.Successful() {
			t.Fatalf("wait: %+v, %v", res, err)
		}
		out.WaitFor(t, "from-mirror", 10*time.Second)
	})

	t.Run("oci archive load", func(t *testing.T) {
		cfg, out, _ := f.taskConfig(t, "load", map[string]any{
			"image": "berth/loaded:v1", "load": "image.tar", "args": []string{"print", "loaded", "-"},
		})
		containerdtest.WriteOCIArchive(t, filepath.Join(cfg.TaskDir, "image.tar"))
		if _, err := f.d.StartTask(f.ctx, cfg); err != nil {
			t.Fatal(err)
		}
		defer f.d.DestroyTask(f.ctx, cfg.ID, true)
		if res := f.wait(t, cfg.ID); !res.Successful() {
			t.Fatalf("exit %+v", res)
		}
		out.WaitFor(t, "loaded", 10*time.Second)
	})

	t.Run("containerd driver name and force pull", func(t *testing.T) {
		cfg, out, _ := f.taskConfig(t, "ctrd", map[string]any{
			"entrypoint": []string{"/testapp", "print"}, "args": []string{"ctr-out", "ctr-err"}, "force_pull": true,
		})
		cfg.Driver = "containerd"
		if _, err := f.d.StartTask(f.ctx, cfg); err != nil {
			t.Fatal(err)
		}
		defer f.d.DestroyTask(f.ctx, cfg.ID, true)
		if res := f.wait(t, cfg.ID); !res.Successful() {
			t.Fatalf("exit %+v", res)
		}
		if got := out.WaitClosed(t, 10*time.Second); !strings.Contains(got, "ctr-out") {
			t.Fatalf("stdout %q", got)
		}
	})

	t.Run("unreachable registry fails the start", func(t *testing.T) {
		cfg, _, _ := f.taskConfig(t, "nopull", map[string]any{"image": "127.0.0.1:1/none:1"})
		f.pcfg.Containerd.InsecureRegistries = append(f.pcfg.Containerd.InsecureRegistries, "127.0.0.1:1")
		if _, err := f.d.StartTask(f.ctx, cfg); err == nil {
			t.Fatal("StartTask with an unpullable image must fail")
		}
		if _, err := f.d.InspectTask(f.ctx, cfg.ID); err == nil {
			t.Fatal("a failed start must leave no task")
		}
	})

	t.Run("fingerprint unhealthy without containerd", func(t *testing.T) {
		d := f.newDriver(t)
		if err := d.SetConfig(f.ctx, &driver.PluginConfig{Containerd: &driver.ContainerdConfig{Address: "/tmp/berth-no-such.sock"}}); err != nil {
			t.Fatal(err)
		}
		fps, err := d.Fingerprint(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, fp := range fps {
			if fp.Healthy || fp.Detected {
				t.Errorf("%s: healthy without containerd", fp.Name)
			}
		}
	})
}

func TestRegistryAuth(t *testing.T) {
	f := newFixture(t)
	private := containerdtest.RegistryWithAuth(t, "berth", "s3cret")
	image := containerdtest.BuildTestImage(t, private, "team/app", "1")
	f.pcfg.Containerd.InsecureRegistries = append(f.pcfg.Containerd.InsecureRegistries, private.Host)

	run := func(t *testing.T, d driver.Driver, name string, dcfg map[string]any) error {
		dcfg["image"], dcfg["args"] = image, []string{"exit", "0"}
		cfg, _, _ := f.taskConfig(t, name, dcfg)
		if _, err := d.StartTask(f.ctx, cfg); err != nil {
			return err
		}
		defer d.DestroyTask(f.ctx, cfg.ID, true)
		ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
		defer cancel()
		if res, err := d.WaitTask(ctx, cfg.ID); err != nil || !res.Successful() {
			t.Fatalf("exit %+v, %v", res, err)
		}
		return nil
	}
	t.Run("no credentials fail", func(t *testing.T) {
		if err := run(t, f.newDriver(t), "noauth", map[string]any{}); err == nil {
			t.Fatal("pull without credentials must fail")
		}
	})
	t.Run("task auth block", func(t *testing.T) {
		auth := map[string]any{"username": "berth", "password": "s3cret"}
		if err := run(t, f.newDriver(t), "taskauth", map[string]any{"auth": auth, "force_pull": true}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("plugin auth per host", func(t *testing.T) {
		f.pcfg.Containerd.Auth = map[string]driver.RegistryAuth{private.Host: {Username: "berth", Password: "s3cret"}}
		if err := run(t, f.newDriver(t), "hostauth", map[string]any{"force_pull": true}); err != nil {
			t.Fatal(err)
		}
	})
}
