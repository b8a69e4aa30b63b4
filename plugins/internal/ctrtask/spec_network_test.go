package ctrtask

import (
	"context"
	"testing"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/plugins/driver"
)

func applySpec(t *testing.T, cfg *driver.TaskConfig) *oci.Spec {
	t.Helper()
	s := &oci.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	for _, opt := range CommonSpecOpts(cfg) {
		if err := opt(context.Background(), nil, &containers.Container{}, s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func mountSources(s *oci.Spec) map[string]string {
	out := map[string]string{}
	for _, m := range s.Mounts {
		out[m.Destination] = m.Source
	}
	return out
}

func netnsPath(s *oci.Spec) (string, bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path, true
		}
	}
	return "", false
}

// An allocation network's namespace, hosts and resolv.conf are used.
func TestCommonSpecOptsAllocNetwork(t *testing.T) {
	s := applySpec(t, &driver.TaskConfig{
		NetworkNamespace: "/state/netns/a1", HostsPath: "/state/a1/hosts", ResolvConfPath: "/state/a1/resolv.conf",
		Hostname: "web",
	})
	if p, ok := netnsPath(s); !ok || p != "/state/netns/a1" {
		t.Fatalf("network namespace %q (set %v)", p, ok)
	}
	m := mountSources(s)
	if m["/etc/hosts"] != "/state/a1/hosts" || m["/etc/resolv.conf"] != "/state/a1/resolv.conf" {
		t.Fatalf("mounts %v", m)
	}
	if s.Hostname != "web" {
		t.Fatalf("hostname %q", s.Hostname)
	}
}

// Without an allocation network the host's network and files are used.
func TestCommonSpecOptsHostNetwork(t *testing.T) {
	s := applySpec(t, &driver.TaskConfig{})
	if p, ok := netnsPath(s); ok {
		t.Fatalf("network namespace %q set in host mode", p)
	}
	m := mountSources(s)
	if m["/etc/hosts"] != "/etc/hosts" || m["/etc/resolv.conf"] != "/etc/resolv.conf" {
		t.Fatalf("mounts %v", m)
	}
}
