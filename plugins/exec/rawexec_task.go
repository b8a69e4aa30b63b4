package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
)

// killGrace bounds how long stop and destroy wait for the leader to go
// after SIGKILL, which the kernel acts on at once.
const killGrace = 5 * time.Second

func (t *rawTask) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *rawTask) wait(ctx context.Context) (*driver.ExitResult, error) {
	select {
	case <-t.done:
		t.mu.Lock()
		defer t.mu.Unlock()
		r := *t.result
		return &r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for task %s: %w", t.cfg.ID, ctx.Err())
	}
}

// signalGroup sends sig to the task's whole process group. A group that
// is already empty is not an error.
func (t *rawTask) signalGroup(sig syscall.Signal) error {
	if t.exited() {
		// While any member of the group lives, its id stays allocated;
		// once all are gone a new process may take the pid and lead a
		// group of its own. A live process under our pid with another
		// start time means the group is no longer ours.
		if st, err := readProcStat(t.pid); err == nil && st.StartTime != t.startTime {
			return nil
		}
	}
	if err := syscall.Kill(-t.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to process group %d: %w", sig, t.pid, err)
	}
	return nil
}

func (t *rawTask) stop(ctx context.Context, timeout time.Duration, signal string) error {
	sig, err := parseSignal(signal, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("stop task %s: %w", t.cfg.ID, err)
	}
	if !t.exited() {
		if err := t.signalGroup(sig); err != nil {
			return fmt.Errorf("stop task %s: %w", t.cfg.ID, err)
		}
		timer := time.NewTimer(timeout)
		select {
		case <-t.done:
		case <-timer.C:
			t.logger.Info("task outlived its kill timeout; killing it", "timeout", timeout)
		case <-ctx.Done():
		}
		timer.Stop()
	}
	// SIGKILL the group even when the leader went on its own: processes
	// it spawned must not outlive the task.
	return t.killAndWait(ctx)
}

func (t *rawTask) killAndWait(ctx context.Context) error {
	if err := t.signalGroup(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill task %s: %w", t.cfg.ID, err)
	}
	if t.cg != nil {
		t.cg.killAll()
	}
	timer := time.NewTimer(killGrace)
	defer timer.Stop()
	select {
	case <-t.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("kill task %s: still running %v after SIGKILL", t.cfg.ID, killGrace)
	case <-ctx.Done():
		return fmt.Errorf("kill task %s: %w", t.cfg.ID, ctx.Err())
	}
}

func (t *rawTask) destroy(ctx context.Context, force bool) error {
	if !t.exited() && !force {
		return fmt.Errorf("destroy task %s: %w", t.cfg.ID, ErrTaskRunning)
	}
	if err := t.killAndWait(ctx); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	t.unwait()
	if t.cg != nil {
		if err := t.removeCgroup(ctx); err != nil {
			return fmt.Errorf("destroy task %s: %w", t.cfg.ID, err)
		}
	}
	return nil
}

// removeCgroup removes the task's cgroup once the processes just killed
// have left it (the kernel takes a moment after SIGKILL).
func (t *rawTask) removeCgroup(ctx context.Context) error {
	deadline := time.Now().Add(killGrace)
	for {
		err := t.cg.remove()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				b, _ := os.ReadFile(filepath.Join(t.cg.dir("memory"), "tasks"))
				err = fmt.Errorf("%w (tasks still in it: %q)", err, strings.Fields(string(b)))
			}
			return err
		}
		t.cg.killAll()
		time.Sleep(20 * time.Millisecond)
	}
}

func (t *rawTask) inspect(context.Context) (*driver.TaskStatus, error) {
	st := &driver.TaskStatus{
		ID:         t.cfg.ID,
		Name:       t.cfg.TaskName,
		State:      driver.TaskStateRunning,
		StartedAt:  t.startedAt,
		Attributes: map[string]string{"pid": strconv.Itoa(t.pid)},
	}
	if t.exited() {
		t.mu.Lock()
		r := *t.result
		st.State = driver.TaskStateExited
		st.ExitResult = &r
		st.CompletedAt = t.completedAt
		t.mu.Unlock()
	}
	return st, nil
}

func (t *rawTask) signal(_ context.Context, signal string) error {
	sig, err := parseSignal(signal, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("signal task %s: %w", t.cfg.ID, err)
	}
	if t.exited() {
		return fmt.Errorf("signal task %s: task has exited", t.cfg.ID)
	}
	return t.signalGroup(sig)
}

// cpuSample is a task's cumulative CPU time at one instant, kept between
// TaskStats calls to turn into percentages.
type cpuSample struct {
	at           time.Time
	user, system uint64 // clock ticks
}

// stats sums /proc figures over the process group. CPU percentages are
// over the time since the previous sample (the first: since the start);
// UserMode and SystemMode are percentages like Percent, TotalTicks is the
// cumulative CPU time in clock ticks (USER_HZ).
func (t *rawTask) stats(context.Context) (*driver.TaskResourceUsage, error) {
	procs, err := groupMembers(t.pid)
	if err != nil {
		return nil, fmt.Errorf("stats of task %s: %w", t.cfg.ID, err)
	}
	now := time.Now()
	usage := &driver.TaskResourceUsage{
		Timestamp: now.UnixNano(),
		PIDs:      map[string]*driver.TaskResourceUsage{},
	}
	var user, system uint64
	for _, p := range procs {
		rss, err := readRSS(p.PID)
		if err != nil {
			continue // exited meanwhile
		}
		user += p.UTime
		system += p.STime
		usage.Memory.RSS += rss
		usage.PIDs[strconv.Itoa(p.PID)] = &driver.TaskResourceUsage{
			Timestamp: usage.Timestamp,
			CPU:       driver.CPUUsage{TotalTicks: float64(p.UTime + p.STime), Measured: []string{"Total Ticks"}},
			Memory:    driver.MemoryUsage{RSS: rss, Measured: []string{"RSS"}},
		}
	}
	t.mu.Lock()
	prev := t.lastCPU
	if prev.at.IsZero() {
		prev = cpuSample{at: t.startedAt}
	}
	t.lastCPU = cpuSample{at: now, user: user, system: system}
	t.mu.Unlock()

	wallTicks := now.Sub(prev.at).Seconds() * clockTicks
	pct := func(cur, old uint64) float64 {
		if wallTicks <= 0 || cur < old {
			return 0
		}
		return float64(cur-old) / wallTicks * 100
	}
	usage.CPU = driver.CPUUsage{
		UserMode:   pct(user, prev.user),
		SystemMode: pct(system, prev.system),
		TotalTicks: float64(user + system),
		Measured:   []string{"System Mode", "User Mode", "Total Ticks", "Percent"},
	}
	usage.CPU.Percent = usage.CPU.UserMode + usage.CPU.SystemMode
	usage.Memory.Measured = []string{"RSS"}
	if t.cg != nil {
		usage.Memory.Usage, usage.Memory.MaxUsage = t.cg.memoryUsage()
		usage.Memory.Measured = append(usage.Memory.Measured, "Usage", "Max Usage")
	}
	return usage, nil
}

func (t *rawTask) exec(ctx context.Context, opts *driver.ExecOptions) (int, error) {
	return hostExec(ctx, t.cfg, opts)
}
