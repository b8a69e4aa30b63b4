package nft

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/nsutil"
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

// inNamespace runs fn on a thread switched into the namespace at path
// ("" runs fn directly).
func inNamespace(path string, fn func() error) error { return nsutil.Run(path, fn) }

// createNamedNS creates a new, empty network namespace bind-mounted at
// path; removeNamedNS undoes it (a missing one is not an error).
func createNamedNS(path string) error { return nsutil.CreateNamed(path) }

func removeNamedNS(path string) error { return nsutil.RemoveNamed(path) }

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
