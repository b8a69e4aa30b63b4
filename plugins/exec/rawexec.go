package exec

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/plugins/driver"
)

// ExitUnknown is ExitResult.Err of a raw_exec task that ended after it was
// recovered by another plugin process. Only a process's parent can learn
// its exit status (wait(2)); once the plugin that started the task is
// gone, the task is re-parented to init, and a recovered task's exit is
// only seen through a pidfd, which tells that it ended but not how. Such
// an ExitResult has ExitCode 0, Signal 0 and this Err, so it never counts
// as Successful.
const ExitUnknown = "exit status unknown: the task exited while berth's plugin was not its parent"

// fifoOpenTimeout bounds how long StartTask waits for a reader on the log
// FIFOs (the agent opens them before StartTask, so this is a safety net).
const fifoOpenTimeout = 10 * time.Second

// rawTask is a raw_exec task: a host process group led by pid.
type rawTask struct {
	logger    *slog.Logger
	cfg       *driver.TaskConfig
	pid       int
	startTime uint64
	startedAt time.Time

	cg *rawCgroup // nil: no cgroup (not root, or no v1 controllers)

	done   chan struct{} // closed once the leader has exited
	unwait func()        // stops the pidfd watcher of a recovered task

	mu          sync.Mutex
	result      *driver.ExitResult
	completedAt time.Time
	lastCPU     cpuSample
}

// startRawExec starts cfg's command as a new session and process group on
// the host. The task gets no parent-death signal: it outlives the plugin.
func startRawExec(cfg *driver.TaskConfig, logger *slog.Logger) (task, *driver.TaskHandle, error) {
	rc, err := parseRawExecConfig(cfg.DriverConfig)
	if err != nil {
		return nil, nil, err
	}
	path, err := resolveHostCommand(rc.Command, cfg.TaskDir, cfg.Env)
	if err != nil {
		return nil, nil, err
	}
	cred, err := credential(cfg.User)
	if err != nil {
		return nil, nil, err
	}
	stdout, err := openFIFOWriter(cfg.StdoutPath)
	if err != nil {
		return nil, nil, err
	}
	defer stdout.Close()
	stderr, err := openFIFOWriter(cfg.StderrPath)
	if err != nil {
		return nil, nil, err
	}
	defer stderr.Close()

	cmd := &osexec.Cmd{
		Path:   path,
		Args:   append([]string{rc.Command}, rc.Args...),
		Env:    taskEnv(cfg.Env),
		Dir:    cfg.TaskDir,
		Stdout: stdout,
		Stderr: stderr,
		// Setsid makes the task a session and process group leader
		// (pgid = pid): signals to -pid reach every process it spawns,
		// and the agent's terminal, if any, cannot hang it up.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Credential: cred},
	}
	var cg *rawCgroup
	if cgroupsAvailable() {
		if cg, err = createRawCgroup(cfg.ID, cfg.Resources); err != nil {
			// Resource limits are best effort for raw_exec, as in Nomad.
			logger.Warn("raw_exec task runs without a cgroup", "task_id", cfg.ID, "error", err)
			cg = nil
		}
	}
	if cg != nil {
		err = cg.startIn(cmd.Start, logger)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		if cg != nil {
			_ = cg.remove()
		}
		return nil, nil, fmt.Errorf("start %s: %w", path, err)
	}
	pid := cmd.Process.Pid
	st, err := readProcStat(pid) // not reaped before cmd.Wait: cannot be reused yet
	if err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if cg != nil {
			_ = cg.remove()
		}
		return nil, nil, fmt.Errorf("identify started task: %w", err)
	}
	t := &rawTask{
		logger:    logger.With("task_id", cfg.ID, "pid", pid),
		cfg:       cfg,
		pid:       pid,
		startTime: st.StartTime,
		startedAt: time.Now(),
		cg:        cg,
		done:      make(chan struct{}),
		unwait:    func() {},
	}
	go t.reap(cmd)
	hs := handleState{Kind: NameRawExec, PID: pid, StartTime: st.StartTime}
	if cg != nil {
		hs.Cgroup = cg.name
	}
	state, err := encodeHandleState(hs)
	if err != nil {
		return nil, nil, err
	}
	return t, &driver.TaskHandle{Version: handleVersion, Config: cfg, State: state, StartedAt: t.startedAt}, nil
}

// reap waits for our own child and records how it ended.
func (t *rawTask) reap(cmd *osexec.Cmd) {
	err := cmd.Wait()
	res := &driver.ExitResult{}
	var ws syscall.WaitStatus
	if cmd.ProcessState != nil {
		ws, _ = cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	switch {
	case cmd.ProcessState == nil:
		res.Err = fmt.Sprintf("wait: %v", err)
	case ws.Signaled():
		res.Signal = int(ws.Signal())
		res.ExitCode = 128 + res.Signal // as a shell reports it
	default:
		res.ExitCode = ws.ExitStatus()
	}
	t.finish(res)
}

func (t *rawTask) finish(res *driver.ExitResult) {
	if t.cg != nil && t.cg.oomKilled() {
		res.OOMKilled = true
	}
	t.mu.Lock()
	t.result = res
	t.completedAt = time.Now()
	t.mu.Unlock()
	t.logger.Info("task exited", "exit_code", res.ExitCode, "signal", res.Signal, "err", res.Err)
	close(t.done)
}

// recoverRawExec re-attaches to a raw_exec task from its handle. The
// process must still be the one the handle names (same pid and start
// time) and not have exited: otherwise the task is ErrTaskNotFound, since
// nothing about its end can be learnt any more.
func recoverRawExec(handle *driver.TaskHandle, st *handleState, logger *slog.Logger) (task, error) {
	if st.PID <= 0 {
		return nil, fmt.Errorf("handle without pid: %w", driver.ErrTaskNotFound)
	}
	// Open the pidfd first, then check identity: once the pidfd is open
	// the pid cannot be handed to another process without the check
	// below seeing a different start time.
	pidfd, err := unix.PidfdOpen(st.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pid %d is gone: %w", st.PID, driver.ErrTaskNotFound)
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", st.PID, err)
	}
	if !processAlive(st.PID, st.StartTime) {
		unix.Close(pidfd)
		return nil, fmt.Errorf("pid %d is no longer the task (exited or reused): %w", st.PID, driver.ErrTaskNotFound)
	}
	t := &rawTask{
		logger:    logger.With("task_id", handle.Config.ID, "pid", st.PID),
		cfg:       handle.Config,
		pid:       st.PID,
		startTime: st.StartTime,
		startedAt: handle.StartedAt,
		done:      make(chan struct{}),
	}
	if st.Cgroup != "" {
		t.cg = &rawCgroup{name: st.Cgroup}
	}
	stop, err := watchPidfd(pidfd, func() { t.finish(&driver.ExitResult{Err: ExitUnknown}) })
	if err != nil {
		unix.Close(pidfd)
		return nil, err
	}
	t.unwait = stop
	return t, nil
}

// watchPidfd calls exited once the process behind pidfd ends, unless the
// returned stop is called first. It owns pidfd and closes it.
func watchPidfd(pidfd int, exited func()) (stop func(), err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("watch pidfd: %w", err)
	}
	go func() {
		defer unix.Close(pidfd)
		defer unix.Close(p[0])
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil && fds[1].Revents != 0 {
				return // stopped
			}
			if err == nil && fds[0].Revents == 0 {
				continue
			}
			exited() // readable pidfd: the process ended (or poll failed: treat as gone)
			return
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { unix.Close(p[1]) }) }, nil
}

// openFIFOWriter opens a log FIFO for writing. O_NONBLOCK makes the open
// fail (ENXIO) instead of hanging when nobody reads yet; it is retried for
// a while, then the descriptor is made blocking again, because the task
// inherits it and expects ordinary blocking writes.
func openFIFOWriter(path string) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	deadline := time.Now().Add(fifoOpenTimeout)
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			if err := unix.SetNonblock(fd, false); err != nil {
				unix.Close(fd)
				return nil, fmt.Errorf("open log fifo %s: %w", path, err)
			}
			return os.NewFile(uintptr(fd), path), nil
		}
		if !errors.Is(err, unix.ENXIO) || time.Now().After(deadline) {
			return nil, fmt.Errorf("open log fifo %s (is the agent reading it?): %w", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
