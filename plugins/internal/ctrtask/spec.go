package ctrtask

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/driver"
)

// CommonSpecOpts are the spec options every containerd-based driver applies
// from the TaskConfig: env, user, default cwd, CPU shares/cores, memory
// limit (MemoryMaxMB as limit and MemoryMB as reservation when set), the
// /alloc, /local and /secrets bind mounts, the network namespace (joined
// when set, the host's otherwise), /etc/hosts and /etc/resolv.conf (the
// allocation network's files when given, the host's otherwise) and the
// hostname. Start applies them
// after the image config and before CreateOptions.SpecOpts.
func CommonSpecOpts(cfg *driver.TaskConfig) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if len(cfg.Env) > 0 {
		env := make([]string, 0, len(cfg.Env))
		for k, v := range cfg.Env {
			env = append(env, k+"="+v)
		}
		sort.Strings(env)
		opts = append(opts, oci.WithEnv(env))
	}
	if cfg.User != "" {
		opts = append(opts, oci.WithUser(cfg.User))
	}
	opts = append(opts, withDefaultCwd)

	res := cfg.Resources
	if res.CPUShares > 0 {
		// cgroup v1 cpu.shares has a floor of 2.
		opts = append(opts, oci.WithCPUShares(uint64(max(res.CPUShares, 2))))
	}
	if len(res.Cores) > 0 {
		cores := make([]string, len(res.Cores))
		for i, c := range res.Cores {
			cores[i] = strconv.Itoa(int(c))
		}
		opts = append(opts, oci.WithCPUs(strings.Join(cores, ",")))
	}
	if limit := memoryLimitMB(res); limit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(limit)<<20))
		if res.MemoryMaxMB > res.MemoryMB && res.MemoryMB > 0 {
			opts = append(opts, withMemoryReservation(res.MemoryMB<<20))
		}
	}

	var mounts []specs.Mount
	if cfg.SharedDir != "" {
		mounts = append(mounts, bindMount(cfg.SharedDir, "/alloc", false))
	}
	if cfg.TaskDir != "" {
		mounts = append(mounts,
			bindMount(filepath.Join(cfg.TaskDir, "local"), "/local", false),
			bindMount(filepath.Join(cfg.TaskDir, "secrets"), "/secrets", false))
	}
	if len(mounts) > 0 {
		opts = append(opts, withExistingMounts(mounts))
	}

	if cfg.NetworkNamespace != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: cfg.NetworkNamespace}))
	} else {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	// The allocation network's own files when it has them (bridge mode),
	// the host's otherwise.
	if cfg.HostsPath != "" {
		opts = append(opts, oci.WithMounts([]specs.Mount{bindMount(cfg.HostsPath, "/etc/hosts", false)}))
	} else if cfg.NetworkNamespace == "" {
		opts = append(opts, oci.WithHostHostsFile)
	}
	if cfg.ResolvConfPath != "" {
		opts = append(opts, oci.WithMounts([]specs.Mount{bindMount(cfg.ResolvConfPath, "/etc/resolv.conf", false)}))
	} else {
		opts = append(opts, oci.WithHostResolvconf)
	}
	if cfg.Hostname != "" {
		opts = append(opts, oci.WithHostname(cfg.Hostname))
	}
	return opts
}

// memoryLimitMB is the hard limit: MemoryMaxMB when larger, else MemoryMB.
func memoryLimitMB(res driver.Resources) int64 {
	if res.MemoryMaxMB > res.MemoryMB {
		return res.MemoryMaxMB
	}
	return res.MemoryMB
}

// BindMount is a bind mount spec of a host path.
func bindMount(src, dst string, readonly bool) specs.Mount {
	opt := "rw"
	if readonly {
		opt = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", opt}}
}

// BindMount is exported for drivers that add their own bind mounts.
func BindMount(src, dst string, readonly bool) specs.Mount { return bindMount(src, dst, readonly) }

// withExistingMounts adds the mounts whose host source exists (a task dir
// without secrets/ must not fail the start).
func withExistingMounts(mounts []specs.Mount) oci.SpecOpts {
	return func(ctx context.Context, c oci.Client, ctr *containers.Container, s *oci.Spec) error {
		var present []specs.Mount
		for _, m := range mounts {
			if _, err := os.Stat(m.Source); err == nil {
				present = append(present, m)
			}
		}
		return oci.WithMounts(present)(ctx, c, ctr, s)
	}
}

func withDefaultCwd(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process != nil && s.Process.Cwd == "" {
		s.Process.Cwd = "/"
	}
	return nil
}

func withMemoryReservation(bytes int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			return nil
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Reservation = &bytes
		return nil
	}
}

// ParseSignal accepts "SIGTERM", "TERM", "sigterm" or a number; empty means
// SIGTERM.
func ParseSignal(name string) (syscall.Signal, error) {
	if name == "" {
		return syscall.SIGTERM, nil
	}
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "SIG") {
		up = "SIG" + up
	}
	sig := unix.SignalNum(up)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", name)
	}
	return sig, nil
}
