package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/internal/ctrtask"
)

// chrootPaths are the host paths an exec task sees, read-only (Nomad's
// default chroot_env, minus what berth mounts itself).
var chrootPaths = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/usr", "/etc"}

// rootfsDirName is the exec task's root directory inside its task dir.
const rootfsDirName = ".rootfs"

// prepareRootfs makes <taskDir>/.rootfs. It holds no copies: a host path
// that is a symlink (merged /usr: /bin -> usr/bin) becomes the same
// symlink, and a directory becomes a mount point for the bind mount that
// chrootMounts adds to the spec. Mounts happen inside the task's own mount
// namespace, so the host never sees them.
func prepareRootfs(taskDir string) (string, error) {
	if taskDir == "" {
		return "", fmt.Errorf("%w: exec needs a task dir", ErrInvalidConfig)
	}
	root := filepath.Join(taskDir, rootfsDirName)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("make rootfs: %w", err)
	}
	for _, p := range chrootPaths {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // absent on this host (/lib32 often is)
		}
		dst := filepath.Join(root, p)
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return "", fmt.Errorf("make rootfs: read link %s: %w", p, err)
			}
			if err := os.Symlink(target, dst); err != nil && !errors.Is(err, os.ErrExist) {
				return "", fmt.Errorf("make rootfs: %w", err)
			}
			continue
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return "", fmt.Errorf("make rootfs: %w", err)
		}
	}
	return root, nil
}

// chrootMounts are the read-only binds of the host directories in
// chrootPaths (symlinks are in the rootfs already).
func chrootMounts() []specs.Mount {
	var mounts []specs.Mount
	for _, p := range chrootPaths {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			mounts = append(mounts, ctrtask.BindMount(p, p, true))
		}
	}
	return mounts
}

// removeRootfs removes the rootfs skeleton that prepareRootfs and runc
// made. Never recursively: should a bind mount be visible here by
// mistake, a recursive delete would wipe the host's /usr. Entries that are
// not empty (a task wrote to /) stay for the alloc dir's own cleanup.
func removeRootfs(taskDir string) {
	root := filepath.Join(taskDir, rootfsDirName)
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		_ = os.Remove(filepath.Join(root, e.Name()))
	}
	_ = os.Remove(root)
}

// execSpecOpts are the exec driver's additions to ctrtask's common spec:
// the command, the chroot's mounts (ahead of the others, so that
// /etc/hosts and /etc/resolv.conf still land on top of /etc), the task's
// tmp dir at /tmp, capabilities and the user.
func execSpecOpts(cfg *driver.TaskConfig, ec *ExecConfig) ([]oci.SpecOpts, error) {
	mounts := chrootMounts()
	if tmp := filepath.Join(cfg.TaskDir, "tmp"); dirExists(tmp) {
		mounts = append(mounts, ctrtask.BindMount(tmp, "/tmp", false))
	}
	opts := []oci.SpecOpts{
		oci.WithProcessArgs(append([]string{ec.Command}, ec.Args...)...),
		withMountsFirst(mounts),
	}
	capOpts, err := capabilityOpts(ec)
	if err != nil {
		return nil, err
	}
	opts = append(opts, capOpts...)
	if cfg.User != "" {
		cred, err := credential(cfg.User)
		if err != nil {
			return nil, err
		}
		opts = append(opts, withUser(cred.Uid, cred.Gid, cred.Groups))
	}
	return opts, nil
}

func capabilityOpts(ec *ExecConfig) ([]oci.SpecOpts, error) {
	norm := func(in []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, c := range in {
			n, err := normalizeCap(c)
			if err != nil {
				return nil, false, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
			}
			if n == "ALL" {
				all = true
				continue
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	drop, dropAll, err := norm(ec.CapDrop)
	if err != nil {
		return nil, err
	}
	add, addAll, err := norm(ec.CapAdd)
	if err != nil {
		return nil, err
	}
	var opts []oci.SpecOpts
	switch {
	case dropAll:
		opts = append(opts, oci.WithCapabilities(nil))
	case len(drop) > 0:
		opts = append(opts, oci.WithDroppedCapabilities(drop))
	}
	if addAll {
		opts = append(opts, oci.WithAllKnownCapabilities)
	} else if len(add) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(add))
	}
	return opts, nil
}

func withMountsFirst(mounts []specs.Mount) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Mounts = append(append([]specs.Mount{}, mounts...), s.Mounts...)
		return nil
	}
}

func withUser(uid, gid uint32, groups []uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.User = specs.User{UID: uid, GID: gid, AdditionalGids: groups}
		return nil
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
