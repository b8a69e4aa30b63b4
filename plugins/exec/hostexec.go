package exec

import (
	"context"
	"fmt"
	"io"
	osexec "os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/berth-dev/berth/plugins/driver"
)

// execOutputGrace bounds how long an exec session waits, after its
// command exited, for output still buffered (or held open by a process
// the command left in the background).
const execOutputGrace = 2 * time.Second

// hostExec runs opts.Command on the host as a raw_exec task's sibling: in
// the task dir, with the task's env and user. It returns the exit code
// (128+signal for a command killed by a signal).
func hostExec(ctx context.Context, cfg *driver.TaskConfig, opts *driver.ExecOptions) (int, error) {
	path, err := resolveHostCommand(opts.Command[0], cfg.TaskDir, cfg.Env)
	if err != nil {
		return -1, fmt.Errorf("exec in task %s: %w", cfg.ID, err)
	}
	cred, err := credential(cfg.User)
	if err != nil {
		return -1, fmt.Errorf("exec in task %s: %w", cfg.ID, err)
	}
	cmd := osexec.CommandContext(ctx, path, opts.Command[1:]...)
	cmd.Args[0] = opts.Command[0]
	cmd.Env = taskEnv(cfg.Env)
	cmd.Dir = cfg.TaskDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.WaitDelay = execOutputGrace
	if opts.Tty {
		err = runWithTTY(cmd, opts)
	} else {
		err = runWithPipes(cmd, opts)
	}
	return exitCodeOf(cmd, err, cfg.ID)
}

func exitCodeOf(cmd *osexec.Cmd, err error, id string) (int, error) {
	if cmd.ProcessState == nil {
		return -1, fmt.Errorf("exec in task %s: %w", id, err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return cmd.ProcessState.ExitCode(), nil
}

func runWithPipes(cmd *osexec.Cmd, opts *driver.ExecOptions) error {
	cmd.Stdout = writerOrDiscard(opts.Stdout)
	cmd.Stderr = writerOrDiscard(opts.Stderr)
	var stdin io.WriteCloser
	if opts.Stdin != nil {
		// Our own copy loop rather than cmd.Stdin: a caller's reader may
		// block forever, and Wait must not wait for it.
		p, err := cmd.StdinPipe()
		if err != nil {
			return fmt.Errorf("stdin pipe: %w", err)
		}
		stdin = p
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, opts.Stdin)
			_ = stdin.Close()
		}()
	}
	return cmd.Wait()
}

func runWithTTY(cmd *osexec.Cmd, opts *driver.ExecOptions) error {
	// pty.Start makes the command a session leader with the terminal as
	// its controlling tty.
	term, err := pty.Start(cmd)
	if err != nil {
		return fmt.Errorf("start with tty: %w", err)
	}
	defer term.Close()
	// The resizer must be gone before term closes: Setsize reads term's fd.
	stopResize := make(chan struct{})
	var resizer sync.WaitGroup
	defer resizer.Wait()
	defer close(stopResize)
	if opts.Resize != nil {
		resizer.Add(1)
		go func() {
			defer resizer.Done()
			for {
				select {
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					_ = pty.Setsize(term, &pty.Winsize{Rows: sz.Height, Cols: sz.Width})
				case <-stopResize:
					return
				}
			}
		}()
	}
	if opts.Stdin != nil {
		go func() { _, _ = io.Copy(term, opts.Stdin) }()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// Reading the master ends with EIO once every slave fd is closed.
		_, _ = io.Copy(writerOrDiscard(opts.Stdout), term)
	}()
	werr := cmd.Wait()
	select {
	case <-copied:
	case <-time.After(execOutputGrace):
	}
	return werr
}

func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
