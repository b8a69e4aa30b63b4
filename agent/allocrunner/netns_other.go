//go:build !linux

package allocrunner

// isNetns cannot tell elsewhere; network namespaces are Linux-only anyway.
func isNetns(string) bool { return true }
