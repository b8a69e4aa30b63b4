package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/berth-dev/berth/agent/containerdproc"
)

// Down removes everything the lab made: every process in its namespaces
// (berth, plugins, raw_exec tasks), the containers in its containerd
// namespaces, the containerd and its shims, the namespaces with their
// veths, the bridge, leftover mounts under the lab dir, and the lab dir.
// It goes on past failures and reports them all; it is safe to repeat.
func (l *Lab) Down(ctx context.Context) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range l.Nodes {
		if _, err := os.Stat(nsPath(n.Netns)); err != nil {
			continue
		}
		pids, err := pidsInNetns(nsPath(n.Netns))
		add(err)
		add(killAll(pids))
	}
	if l.ContainerdAddress != "" {
		add(l.removeContainers(ctx))
		add(l.stopContainerd())
	}
	// Shims (and anything else) started for this lab mention its dir.
	if pids, err := pidsWithArg(l.Dir + "/"); err == nil {
		add(killAll(pids))
	} else {
		add(err)
	}
	for _, n := range l.Nodes {
		add(deleteNetns(n.Netns))
		add(deleteLink(n.HostVeth)) // normally gone with its peer's namespace
	}
	if l.Bridge != "" {
		add(deleteLink(l.Bridge))
	}
	add(unmountUnder(l.Dir))
	if err := os.RemoveAll(l.Dir); err != nil {
		add(fmt.Errorf("remove lab dir: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down %s: %w", l.Name, err)
	}
	l.logger.Info("lab down")
	return nil
}

// removeContainers kills the tasks and deletes the containers (with
// their snapshots) in every agent's containerd namespace.
func (l *Lab) removeContainers(ctx context.Context) error {
	if !containerdproc.Reachable(ctx, l.ContainerdAddress) {
		return nil
	}
	c, err := containerd.New(l.ContainerdAddress, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect lab containerd: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var errs []error
	for _, n := range l.NodesOf(RoleAgent) {
		nctx := namespaces.WithNamespace(ctx, n.ContainerdNamespace)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers of %s: %w", n.Name, err))
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				_ = task.Kill(nctx, syscall.SIGKILL)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-time.After(10 * time.Second):
					}
				}
				if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil {
					errs = append(errs, fmt.Errorf("delete task %s: %w", ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("delete container %s: %w", ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// stopContainerd stops the lab's containerd (recorded by pid, since the
// process that started it is usually gone).
func (l *Lab) stopContainerd() error {
	pid := l.ContainerdPid
	if !pidAlive(pid) {
		return nil
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(b), l.Dir) {
		return nil // pid recycled: not ours
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(pid, containerdproc.StopGrace) == nil {
		return nil
	}
	return killAll([]int{pid})
}

// unmountUnder lazily unmounts every mount point below dir, deepest
// first (a killed containerd can leave rootfs and shm mounts behind).
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4]+"/", prefix) {
			points = append(points, fields[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
