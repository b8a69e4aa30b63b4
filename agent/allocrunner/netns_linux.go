package allocrunner

import "golang.org/x/sys/unix"

// isNetns reports whether path is a network namespace (a bind-mounted
// nsfs file). After a reboot the plugin's bind mounts are gone and the
// path, if it exists at all, is a plain file.
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
