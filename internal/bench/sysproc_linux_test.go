package bench

import "syscall"

// sysProcAttr makes the kernel SIGKILL a server if the benchmark binary
// dies without running its cleanups (a -timeout panic, say).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
