package nft

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// openNS opens the network namespace at path ("" = the calling process's).
// The handle must be closed by the caller.
func openNS(path string) (netns.NsHandle, error) {
	if path == "" {
		// The process's namespace, not the (possibly switched) thread's.
		return netns.GetFromPath(fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))
	}
	return netns.GetFromPath(path)
}

// inNamespace runs fn on a locked OS thread switched into the namespace at
// path ("" runs fn directly). Go schedules goroutines on any thread, so the
// thread stays locked for the whole switch; if switching back fails the
// thread is left locked and dies with the goroutine instead of being reused
// in the wrong namespace.
func inNamespace(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get thread netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// createNamedNS creates a new, empty network namespace and bind-mounts it
// at path so that it outlives the thread that created it.
func createNamedNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create netns dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get thread netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		merr := unix.Mount(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()), path, "none", unix.MS_BIND, "")
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(merr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		if merr != nil {
			merr = fmt.Errorf("bind-mount netns at %s: %w", path, merr)
		}
		errc <- merr
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeNamedNS unmounts and removes a namespace created by createNamedNS.
// A missing one is not an error.
func removeNamedNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// isNSMount reports whether path is a bind-mounted network namespace.
func isNSMount(path string) bool {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return false
	}
	defer h.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(h), &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// writeSysctl writes a /proc/sys value as seen from the namespace at nsPath.
// net sysctls resolve against the opening thread's namespace.
func writeSysctl(nsPath, name, value string) error {
	return inNamespace(nsPath, func() error {
		p := filepath.Join("/proc/sys", name)
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("write sysctl %s: %w", name, err)
		}
		return nil
	})
}

// handleAt opens a netlink handle in the namespace at path ("" = process).
func handleAt(path string) (*netlink.Handle, error) {
	ns, err := openNS(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %q: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %q: %w", path, err)
	}
	return h, nil
}
