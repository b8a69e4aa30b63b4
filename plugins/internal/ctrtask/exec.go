package ctrtask

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"

	"github.com/berth-dev/berth/plugins/driver"
)

// Exec runs o.Command inside the task (same namespaces, cgroup, env, user
// and cwd as the task's process) and returns its exit code. Standard
// streams are copied through FIFOs in a private directory. With o.Tty the
// process gets a terminal, resized from o.Resize; ctx ending kills it.
func (r *Runtime) Exec(ctx context.Context, id string, o *driver.ExecOptions) (int, error) {
	if o == nil || len(o.Command) == 0 {
		return -1, errors.New("exec: empty command")
	}
	e, err := r.lookup(id)
	if err != nil {
		return -1, err
	}
	if e.exited() {
		return -1, fmt.Errorf("exec in task %s: task has exited", id)
	}
	nctx := r.WithNamespace(ctx)
	spec, err := e.container.Spec(nctx)
	if err != nil {
		return -1, fmt.Errorf("exec in task %s: container spec: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = o.Command
	pspec.Terminal = o.Tty

	var stdin io.Reader
	eof := make(chan struct{})
	if o.Stdin != nil {
		stdin = &eofReader{r: o.Stdin, eof: eof}
	}
	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	// A private FIFO dir per exec, rather than containerd's shared default.
	fifoDir, err := os.MkdirTemp("", "berth-exec-")
	if err != nil {
		return -1, fmt.Errorf("exec in task %s: fifo dir: %w", id, err)
	}
	defer os.RemoveAll(fifoDir)
	ioOpts := []cio.Opt{cio.WithFIFODir(fifoDir)}
	if o.Tty {
		ioOpts = append(ioOpts, cio.WithStreams(stdin, stdout, nil), cio.WithTerminal)
	} else {
		if stderr == nil {
			stderr = io.Discard
		}
		ioOpts = append(ioOpts, cio.WithStreams(stdin, stdout, stderr))
	}

	execID := "exec-" + randomHex(6)
	p, err := e.task.Exec(nctx, execID, &pspec, cio.NewCreator(ioOpts...))
	if err != nil {
		return -1, fmt.Errorf("exec in task %s: %w", id, err)
	}
	// Cleanup must run even when ctx is done.
	defer func() {
		dctx, cancel := context.WithTimeout(r.WithNamespace(context.Background()), 10*time.Second)
		defer cancel()
		_, _ = p.Delete(dctx, containerd.WithProcessKill)
	}()
	statusC, err := p.Wait(r.WithNamespace(context.Background()))
	if err != nil {
		return -1, fmt.Errorf("exec in task %s: wait: %w", id, err)
	}
	if err := p.Start(nctx); err != nil {
		return -1, fmt.Errorf("exec in task %s: start: %w", id, err)
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	defer func() { close(done); wg.Wait() }()
	if o.Stdin != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-eof:
				// The shim keeps stdin open until told: forward the EOF.
				_ = p.CloseIO(r.WithNamespace(context.Background()), containerd.WithStdinCloser)
			case <-done:
			}
		}()
	}
	if o.Tty && o.Resize != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					_ = p.Resize(nctx, uint32(sz.Width), uint32(sz.Height))
				case <-done:
					return
				}
			}
		}()
	}

	select {
	case st := <-statusC:
		// Drain the output before reporting the exit.
		p.IO().Wait()
		code, _, err := st.Result()
		if err != nil {
			return -1, fmt.Errorf("exec in task %s: %w", id, err)
		}
		return int(code), nil
	case <-ctx.Done():
		_ = p.Kill(r.WithNamespace(context.Background()), syscall.SIGKILL)
		return -1, fmt.Errorf("exec in task %s: %w", id, ctx.Err())
	}
}

// eofReader closes eof once the wrapped reader is exhausted.
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
