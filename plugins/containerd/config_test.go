package containerd

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/plugins/driver"
)

func TestDockerConfigTranslation(t *testing.T) {
	raw := `{
		"image": "redis:7", "command": "/bin/server", "args": ["-p", "80"],
		"work_dir": "/srv", "cap_add": ["net_admin"], "cap_drop": ["CAP_CHOWN"],
		"volumes": ["data:/data", "/etc/ssl:/ssl:ro"],
		"mount": [{"type": "tmpfs", "target": "/scratch", "tmpfs_options": {"size": 1024}},
		          {"type": "bind", "source": "cfg", "target": "/cfg", "readonly": true}],
		"labels": [{"team": "a"}], "hostname": "h1", "network_mode": "host",
		"ports": ["http"], "auth": {"username": "u", "password": "p"}, "force_pull": true,
		"sysctl": {"net.core.somaxconn": "1024"}, "readonly_rootfs": true,
		"dns_servers": ["1.1.1.1"], "ulimit": {"nofile": "1024:2048"}, "image_pull_timeout": "2m"
	}`
	s, err := parseTaskSpec(&driver.TaskConfig{Driver: "docker", DriverConfig: json.RawMessage(raw)})
	if err != nil {
		t.Fatal(err)
	}
	want := &taskSpec{
		Image: "redis:7", Command: []string{"/bin/server", "-p", "80"}, WorkDir: "/srv",
		CapAdd: []string{"net_admin"}, CapDrop: []string{"CAP_CHOWN"},
		Mounts: []mountSpec{
			{Type: "bind", Source: "data", Target: "/data"},
			{Type: "bind", Source: "/etc/ssl", Target: "/ssl", Readonly: true},
			{Type: "tmpfs", Target: "/scratch", Options: []string{"size=1024"}},
			{Type: "bind", Source: "cfg", Target: "/cfg", Readonly: true},
		},
		Labels: map[string]string{"team": "a"}, Hostname: "h1", Network: "host",
		Auth: &driver.RegistryAuth{Username: "u", Password: "p"}, ForcePull: true,
		Sysctl: map[string]string{"net.core.somaxconn": "1024"}, ReadonlyRootfs: true,
		Ulimits: map[string]string{"nofile": "1024:2048"}, DNSServers: []string{"1.1.1.1"},
		PullTimeout: 2 * time.Minute,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("spec (-want +got):\n%s", diff)
	}
}

func TestDockerUnsupportedOptionsAreNamed(t *testing.T) {
	raw := `{"image": "redis:7", "devices": [{"host_path": "/dev/fuse"}], "ipc_mode": "host", "shm_size": 1}`
	err := (&Driver{}).ValidateTaskConfig(t.Context(), &driver.TaskConfig{Driver: "docker", DriverConfig: json.RawMessage(raw)})
	if !errors.Is(err, ErrUnsupportedOption) {
		t.Fatalf("want ErrUnsupportedOption, got %v", err)
	}
	for _, name := range []string{"devices", "ipc_mode", "shm_size"} {
		want := `docker driver option "` + name + `" is not supported by berth`
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct{ driver, raw string }{
		"missing image":        {"docker", `{}`},
		"bad volume":           {"docker", `{"image": "x", "volumes": ["nocolon"]}`},
		"bad volume mode":      {"docker", `{"image": "x", "volumes": ["a:/b:zz"]}`},
		"relative target":      {"docker", `{"image": "x", "mount": {"type": "bind", "source": "a", "target": "b"}}`},
		"network container":    {"docker", `{"image": "x", "network_mode": "container:web"}`},
		"bad ulimit":           {"docker", `{"image": "x", "ulimit": {"nofile": "a:b"}}`},
		"bad pull timeout":     {"docker", `{"image": "x", "image_pull_timeout": "soon"}`},
		"wrong type":           {"docker", `{"image": "x", "privileged": "yes"}`},
		"containerd unknown":   {"containerd", `{"image": "x", "volumes": ["a:/b"]}`},
		"containerd no image":  {"containerd", `{"command": "x"}`},
		"unserved driver name": {"exec", `{"image": "x"}`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseTaskSpec(&driver.TaskConfig{Driver: c.driver, DriverConfig: json.RawMessage(c.raw)})
			if err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestContainerdConfig(t *testing.T) {
	raw := `{"image": "docker.io/library/x:1", "entrypoint": ["/e"], "args": ["a"], "cwd": "/w",
		"host_network": true, "mounts": [{"type": "bind", "source": "/s", "target": "/t", "options": ["rbind", "ro"]}]}`
	s, err := parseTaskSpec(&driver.TaskConfig{Driver: "containerd", DriverConfig: json.RawMessage(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Network != "host" || s.WorkDir != "/w" || !s.Mounts[0].Readonly || len(s.Command) != 1 {
		t.Fatalf("unexpected spec %+v", s)
	}
}

func TestProcessArgs(t *testing.T) {
	img := struct{ entry, cmd []string }{[]string{"/ep"}, []string{"default"}}
	cases := []struct {
		name string
		spec taskSpec
		want []string
	}{
		{"image defaults", taskSpec{}, []string{"/ep", "default"}},
		{"command replaces cmd", taskSpec{Command: []string{"run", "x"}}, []string{"/ep", "run", "x"}},
		{"entrypoint drops cmd", taskSpec{Entrypoint: []string{"/sh"}}, []string{"/sh"}},
		{"entrypoint and command", taskSpec{Entrypoint: []string{"/sh", "-c"}, Command: []string{"echo"}}, []string{"/sh", "-c", "echo"}},
	}
	for _, c := range cases {
		if got := processArgs(&c.spec, img.entry, img.cmd); !cmp.Equal(got, c.want) {
			t.Errorf("%s: got %q want %q", c.name, got, c.want)
		}
	}
}

func TestNormalizeRefAndMirrorHost(t *testing.T) {
	got, err := normalizeRef("redis:7")
	if err != nil || got != "docker.io/library/redis:7" {
		t.Fatalf("normalizeRef = %q, %v", got, err)
	}
	h, err := mirrorHost("http://127.0.0.1:5000")
	if err != nil || h.Scheme != "http" || h.Host != "127.0.0.1:5000" || h.Path != "/v2" {
		t.Fatalf("mirrorHost = %+v, %v", h, err)
	}
	h, err = mirrorHost("mirror.example/prefix/")
	if err != nil || h.Scheme != "https" || h.Path != "/prefix/v2" {
		t.Fatalf("mirrorHost = %+v, %v", h, err)
	}
}
