package exec

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/driver"
)

// cgroupV1Root is where the v1 controllers berth uses are mounted.
var cgroupV1Root = "/sys/fs/cgroup"

// rawCgroupParent is berth's subtree, under each v1 controller, for
// raw_exec tasks.
const rawCgroupParent = "berth/raw_exec"

// rawCgroup is a raw_exec task's cgroup in the v1 memory and cpu
// controllers: <root>/{memory,cpu}/berth/raw_exec/<name>.
type rawCgroup struct {
	name string
}

func (c rawCgroup) dir(controller string) string {
	return filepath.Join(cgroupV1Root, controller, rawCgroupParent, c.name)
}

// cgroupName turns a task ID into a directory name.
func cgroupName(taskID string) string { return strings.ReplaceAll(taskID, "/", "-") }

// cgroupsAvailable reports whether v1 memory and cpu controllers can be
// managed here (root on a v1 or hybrid host).
func cgroupsAvailable() bool {
	if os.Geteuid() != 0 {
		return false
	}
	for _, f := range []string{"memory/memory.limit_in_bytes", "cpu/cpu.shares"} {
		if _, err := os.Stat(filepath.Join(cgroupV1Root, f)); err != nil {
			return false
		}
	}
	return true
}

// createRawCgroup makes the task's cgroups and applies its limits:
// memory.limit_in_bytes from MemoryMaxMB (or MemoryMB), MemoryMB as the
// soft limit when a larger max is set, cpu.shares from CPUShares.
func createRawCgroup(taskID string, res driver.Resources) (*rawCgroup, error) {
	c := &rawCgroup{name: cgroupName(taskID)}
	for _, ctl := range []string{"memory", "cpu"} {
		if err := os.MkdirAll(c.dir(ctl), 0o755); err != nil {
			return nil, fmt.Errorf("make %s cgroup: %w", ctl, err)
		}
	}
	write := func(ctl, file string, v int64) error {
		p := filepath.Join(c.dir(ctl), file)
		if err := os.WriteFile(p, []byte(strconv.FormatInt(v, 10)), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", p, err)
		}
		return nil
	}
	var errs []error
	if limit := max(res.MemoryMaxMB, res.MemoryMB); limit > 0 {
		errs = append(errs, write("memory", "memory.limit_in_bytes", limit<<20))
		// With swap accounting, cap memory+swap too, or the task swaps
		// instead of meeting its limit.
		if _, err := os.Stat(filepath.Join(c.dir("memory"), "memory.memsw.limit_in_bytes")); err == nil {
			errs = append(errs, write("memory", "memory.memsw.limit_in_bytes", limit<<20))
		}
		if res.MemoryMB > 0 && res.MemoryMaxMB > res.MemoryMB {
			errs = append(errs, write("memory", "memory.soft_limit_in_bytes", res.MemoryMB<<20))
		}
	}
	if res.CPUShares > 0 {
		errs = append(errs, write("cpu", "cpu.shares", max(res.CPUShares, 2)))
	}
	if err := errors.Join(errs...); err != nil {
		c.remove()
		return nil, err
	}
	return c, nil
}

// startIn runs start (which forks the task) on a thread that was moved
// into the cgroup first. In cgroup v1 membership is per thread and a
// child inherits its forking thread's cgroups, so the task is confined
// from its first instruction, with no window in which it could fork
// outside. The thread then goes back to the cgroups it came from; should
// that fail it stays locked, so that nothing else ever runs on it.
func (c *rawCgroup) startIn(start func() error, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tid := strconv.Itoa(unix.Gettid())
		home, err := threadCgroups()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		joined := 0
		defer func() {
			for _, ctl := range cgroupControllers[:joined] {
				back := filepath.Join(cgroupV1Root, ctl, home[ctl], "tasks")
				if err := os.WriteFile(back, []byte(tid), 0o644); err != nil {
					logger.Warn("could not move a plugin thread out of a task cgroup; retiring it", "error", err)
					return // still locked: the thread is retired with its goroutine
				}
			}
			runtime.UnlockOSThread()
		}()
		for _, ctl := range cgroupControllers {
			if err := os.WriteFile(filepath.Join(c.dir(ctl), "tasks"), []byte(tid), 0o644); err != nil {
				errc <- fmt.Errorf("join %s cgroup: %w", ctl, err)
				return
			}
			joined++
		}
		errc <- start()
	}()
	return <-errc
}

// cgroupControllers are the v1 controllers a raw_exec task is placed in.
var cgroupControllers = []string{"memory", "cpu"}

// threadCgroups maps each of cgroupControllers to the calling thread's
// cgroup path in it, from /proc/thread-self/cgroup.
func threadCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroups: %w", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3) // id:controllers:path
		if len(parts) != 3 {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			out[ctl] = parts[2]
		}
	}
	for _, ctl := range cgroupControllers {
		if _, ok := out[ctl]; !ok {
			return nil, fmt.Errorf("own cgroups: no %s controller in /proc/thread-self/cgroup", ctl)
		}
	}
	return out, nil
}

// oomKilled reports whether the kernel's OOM killer acted in the cgroup.
func (c *rawCgroup) oomKilled() bool {
	b, err := os.ReadFile(filepath.Join(c.dir("memory"), "memory.oom_control"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// memoryUsage reads the cgroup's current and peak usage in bytes.
func (c *rawCgroup) memoryUsage() (usage, peak uint64) {
	read := func(f string) uint64 {
		b, err := os.ReadFile(filepath.Join(c.dir("memory"), f))
		if err != nil {
			return 0
		}
		v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v
	}
	return read("memory.usage_in_bytes"), read("memory.max_usage_in_bytes")
}

// killAll SIGKILLs every process in the cgroup, including any that left
// the task's process group.
func (c *rawCgroup) killAll() {
	b, err := os.ReadFile(filepath.Join(c.dir("memory"), "cgroup.procs"))
	if err != nil {
		return
	}
	self := os.Getpid() // a thread of ours may linger there after startIn
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 && pid != self {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// remove deletes the task's cgroups; they must be empty (rmdir refuses
// otherwise, which is left for a later destroy to retry).
func (c *rawCgroup) remove() error {
	var errs []error
	for _, ctl := range []string{"memory", "cpu"} {
		if err := syscall.Rmdir(c.dir(ctl)); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("remove %s cgroup: %w", ctl, err))
		}
	}
	return errors.Join(errs...)
}
