// Package logs carries a task's stdout and stderr from the FIFOs its
// driver writes into rotated files in the allocation's log directory, and
// streams those files back (the logs API).
//
// The agent owns the reading end: it creates logDir/.<task>.stdout.fifo
// and .stderr.fifo, opens them before the task starts and copies what
// arrives into logDir/<task>.stdout.<n> (and stderr), starting a new file
// past max_file_size and deleting the oldest past max_files.
//
// Restarts: the FIFOs and files are reused by a new TaskLogger on the same
// directory; it appends to the highest existing index. Data the writer put
// in the pipe while no logger was reading stays in the pipe buffer (64 KiB
// on Linux) as long as the writer keeps its end open, and is read by the
// next logger. A write made while no reader has the FIFO open fails with
// EPIPE (and raises SIGPIPE in a writer that does not ignore it), so the
// gap between Close and the next NewTaskLogger must stay short; drivers
// (containerd shims) keep their own end open across agent restarts.
package logs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-dev/berth/structs"
)

// Defaults of the logs block, as Nomad's.
const (
	DefaultMaxFiles      = 10
	DefaultMaxFileSizeMB = 10
)

// TaskLogger reads one task's two FIFOs into rotated files.
type TaskLogger struct {
	stdoutPath, stderrPath string
	streams                []*stream
	logger                 *slog.Logger
	closeOnce              sync.Once
	closeErr               error
}

// stream is one FIFO and the rotated files it feeds.
type stream struct {
	fifo *os.File
	out  io.WriteCloser // *rotator, or a discarder when logs are disabled
	done chan struct{}
	// closing tells copy that a read deadline is Close asking it to drain
	// what is left in the pipe and stop.
	closing atomic.Bool
}

// maxDrainReads bounds the final drain: a writer that keeps writing (a
// task's orphaned child) must not hold Close forever. 64 reads of 32 KiB
// empty a full pipe buffer many times over.
const maxDrainReads = 64

// FIFOPath returns the FIFO path for task's kind ("stdout" or "stderr").
func FIFOPath(logDir, task, kind string) string {
	return filepath.Join(logDir, "."+task+"."+kind+".fifo")
}

// NewTaskLogger creates (or reuses) task's FIFOs in logDir and starts
// copying them into rotated files per cfg (nil: Nomad's defaults).
func NewTaskLogger(logDir, task string, cfg *structs.LogConfig, logger *slog.Logger) (*TaskLogger, error) {
	if task == "" || filepath.Base(task) != task || task == "." || task == ".." {
		return nil, fmt.Errorf("task logger: invalid task name %q", task)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxFiles, maxSize := DefaultMaxFiles, int64(DefaultMaxFileSizeMB)<<20
	disabled := false
	if cfg != nil {
		if cfg.MaxFiles > 0 {
			maxFiles = cfg.MaxFiles
		}
		if cfg.MaxFileSizeMB > 0 {
			maxSize = int64(cfg.MaxFileSizeMB) << 20
		}
		disabled = cfg.Disabled
	}
	l := &TaskLogger{
		stdoutPath: FIFOPath(logDir, task, "stdout"),
		stderrPath: FIFOPath(logDir, task, "stderr"),
		logger:     logger.With("component", "task_logger", "task", task),
	}
	for _, kind := range []string{"stdout", "stderr"} {
		var out io.WriteCloser = discard{}
		if !disabled {
			r, err := newRotator(logDir, task+"."+kind, maxFiles, maxSize)
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("task logger %s: %w", kind, err)
			}
			out = r
		}
		fifo, err := openFIFO(FIFOPath(logDir, task, kind))
		if err != nil {
			out.Close()
			l.Close()
			return nil, fmt.Errorf("task logger %s: %w", kind, err)
		}
		s := &stream{fifo: fifo, out: out, done: make(chan struct{})}
		l.streams = append(l.streams, s)
		go l.copy(s, kind)
	}
	return l, nil
}

// StdoutPath is the FIFO the driver connects the task's stdout to.
func (l *TaskLogger) StdoutPath() string { return l.stdoutPath }

// StderrPath is the FIFO the driver connects the task's stderr to.
func (l *TaskLogger) StderrPath() string { return l.stderrPath }

// Close stops reading, flushes and closes the files. The FIFOs and files
// stay for a later logger and for streaming.
func (l *TaskLogger) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		for _, s := range l.streams {
			// Wake the pending Read with a deadline rather than closing the
			// FIFO under it: what the task wrote just before exiting may
			// still sit in the pipe, and copy drains it first. Closing the
			// pollable FIFO is the fallback that always unblocks the Read.
			s.closing.Store(true)
			if err := s.fifo.SetReadDeadline(time.Now()); err != nil {
				if err := s.fifo.Close(); err != nil {
					errs = append(errs, err)
				}
				<-s.done
			} else {
				<-s.done
				if err := s.fifo.Close(); err != nil {
					errs = append(errs, err)
				}
			}
			if err := s.out.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

func (l *TaskLogger) copy(s *stream, kind string) {
	defer close(s.done)
	buf := make([]byte, 32*1024)
	for {
		n, err := s.fifo.Read(buf)
		if n > 0 {
			if _, werr := s.out.Write(buf[:n]); werr != nil {
				l.logger.Warn("writing log file failed", "stream", kind, "error", werr)
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && s.closing.Load() {
			l.drain(s, kind, buf)
			return
		}
		if err != nil {
			if !errors.Is(err, fs.ErrClosed) && !errors.Is(err, io.EOF) {
				l.logger.Warn("reading log fifo failed", "stream", kind, "error", err)
			}
			return
		}
	}
}

// drain copies what is left in the pipe without waiting for more: raw
// non-blocking reads until the pipe is empty (EAGAIN), bounded in count.
func (l *TaskLogger) drain(s *stream, kind string, buf []byte) {
	if err := s.fifo.SetReadDeadline(time.Time{}); err != nil {
		return
	}
	rc, err := s.fifo.SyscallConn()
	if err != nil {
		return
	}
	for range maxDrainReads {
		var n int
		var rerr error
		// returning true: one attempt, never park waiting for data
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true
		}); err != nil || rerr != nil || n <= 0 {
			return
		}
		if _, werr := s.out.Write(buf[:n]); werr != nil {
			l.logger.Warn("writing log file failed", "stream", kind, "error", werr)
		}
	}
}

// openFIFO creates path as a FIFO unless it already is one, and opens it
// read-write: on Linux that never blocks, and holding a write reference
// ourselves means the reader never sees EOF when the task's writer closes
// and reopens (task restarts), so one logger serves the whole allocation.
func openFIFO(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("mkfifo %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("stat fifo: %w", err)
	case fi.Mode()&fs.ModeNamedPipe == 0:
		return nil, fmt.Errorf("%s exists and is not a fifo", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open fifo: %w", err)
	}
	return f, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }
