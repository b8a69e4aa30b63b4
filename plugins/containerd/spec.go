package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/plugins/driver"
)

// processArgs applies Docker's rules: a configured entrypoint replaces the
// image's ENTRYPOINT and drops its CMD; a configured command (+args)
// replaces CMD.
func processArgs(s *taskSpec, imgEntrypoint, imgCmd []string) []string {
	entry, cmd := imgEntrypoint, imgCmd
	if s.Entrypoint != nil {
		entry, cmd = s.Entrypoint, nil
	}
	if s.Command != nil {
		cmd = s.Command
	}
	return append(append([]string{}, entry...), cmd...)
}

// specOpts turns a decoded task config into the driver-specific spec
// options (applied after ctrtask.CommonSpecOpts).
func specOpts(ctx context.Context, cfg *driver.TaskConfig, s *taskSpec, img containerd.Image, volumesDir string) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if s.Entrypoint != nil || s.Command != nil {
		ic, err := img.Spec(ctx)
		if err != nil {
			return nil, fmt.Errorf("read image config of %s: %w", img.Name(), err)
		}
		args := processArgs(s, ic.Config.Entrypoint, ic.Config.Cmd)
		if len(args) == 0 {
			return nil, fmt.Errorf("image %s: no command to run", img.Name())
		}
		opts = append(opts, oci.WithProcessArgs(args...))
	}
	if s.WorkDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkDir))
	}
	if s.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	}
	if add := capNames(s.CapAdd); len(add) > 0 {
		if hasAll(add) {
			opts = append(opts, oci.WithAllKnownCapabilities)
		} else {
			opts = append(opts, oci.WithAddedCapabilities(add))
		}
	}
	if drop := capNames(s.CapDrop); len(drop) > 0 {
		if hasAll(drop) {
			opts = append(opts, oci.WithCapabilities(nil))
		} else {
			opts = append(opts, oci.WithDroppedCapabilities(drop))
		}
	}
	if s.ReadonlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if s.Hostname != "" {
		opts = append(opts, oci.WithHostname(s.Hostname))
	}
	switch s.Network {
	case "host":
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile)
	case "none":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace}))
	}
	if len(s.Sysctl) > 0 {
		opts = append(opts, withSysctls(s.Sysctl))
	}
	if len(s.Ulimits) > 0 {
		rl, err := rlimits(s.Ulimits)
		if err != nil {
			return nil, err
		}
		opts = append(opts, withRlimits(rl))
	}
	if len(s.DNSServers) > 0 {
		m, err := resolvConfMount(cfg, s.DNSServers)
		if err != nil {
			return nil, err
		}
		opts = append(opts, oci.WithMounts([]specs.Mount{m}))
	}
	mounts, err := resolveMounts(cfg, s.Mounts, volumesDir)
	if err != nil {
		return nil, err
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	return opts, nil
}

// resolveMounts makes relative bind sources relative to the task dir and
// maps named volumes to directories under volumesDir.
func resolveMounts(cfg *driver.TaskConfig, ms []mountSpec, volumesDir string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range ms {
		mode := "rw"
		if m.Readonly {
			mode = "ro"
		}
		switch m.Type {
		case "bind":
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(cfg.TaskDir, src)
			}
			opts := m.Options
			if len(opts) == 0 {
				opts = []string{"rbind", mode}
			} else if !contains(opts, "bind") && !contains(opts, "rbind") {
				opts = append([]string{"rbind"}, opts...)
			}
			out = append(out, specs.Mount{Type: "bind", Source: src, Destination: m.Target, Options: opts})
		case "volume":
			if volumesDir == "" {
				return nil, fmt.Errorf("volume %q: no plugin state dir for named volumes", m.Source)
			}
			if strings.ContainsAny(m.Source, "/\\") || m.Source == ".." || m.Source == "." {
				return nil, fmt.Errorf("volume name %q is not a plain name", m.Source)
			}
			dir := filepath.Join(volumesDir, m.Source)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("volume %q: %w", m.Source, err)
			}
			out = append(out, specs.Mount{Type: "bind", Source: dir, Destination: m.Target, Options: []string{"rbind", mode}})
		case "tmpfs":
			opts := append([]string{"nosuid", "nodev", mode}, m.Options...)
			out = append(out, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: m.Target, Options: opts})
		default:
			out = append(out, specs.Mount{Type: m.Type, Source: m.Source, Destination: m.Target, Options: m.Options})
		}
	}
	return out, nil
}

func capNames(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

func hasAll(caps []string) bool { return contains(caps, "ALL") }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func withSysctls(sysctl map[string]string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range sysctl {
			s.Linux.Sysctl[k] = v
		}
		return nil
	}
}

// parseUlimit reads "soft:hard" or "n" for RLIMIT_<NAME>.
func parseUlimit(name, v string) (uint64, uint64, error) {
	soft, hard, found := strings.Cut(v, ":")
	s, err := strconv.ParseUint(soft, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("docker ulimit %s=%q: %w", name, v, err)
	}
	h := s
	if found {
		if h, err = strconv.ParseUint(hard, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("docker ulimit %s=%q: %w", name, v, err)
		}
	}
	if h < s {
		return 0, 0, fmt.Errorf("docker ulimit %s=%q: soft limit above hard limit", name, v)
	}
	return s, h, nil
}

func rlimits(ul map[string]string) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for name, v := range ul {
		s, h, err := parseUlimit(name, v)
		if err != nil {
			return nil, err
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: s, Hard: h})
	}
	return out, nil
}

func withRlimits(rl []specs.POSIXRlimit) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			return nil
		}
		for _, r := range rl {
			replaced := false
			for i := range s.Process.Rlimits {
				if s.Process.Rlimits[i].Type == r.Type {
					s.Process.Rlimits[i], replaced = r, true
				}
			}
			if !replaced {
				s.Process.Rlimits = append(s.Process.Rlimits, r)
			}
		}
		return nil
	}
}

// resolvConfMount writes a resolv.conf naming servers into the task dir
// and mounts it over the host one CommonSpecOpts mounts (later wins).
func resolvConfMount(cfg *driver.TaskConfig, servers []string) (specs.Mount, error) {
	if cfg.TaskDir == "" {
		return specs.Mount{}, fmt.Errorf("dns_servers: task has no task dir")
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	path := filepath.Join(cfg.TaskDir, "resolv.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return specs.Mount{}, fmt.Errorf("dns_servers: %w", err)
	}
	return specs.Mount{Type: "bind", Source: path, Destination: "/etc/resolv.conf", Options: []string{"rbind", "ro"}}, nil
}
