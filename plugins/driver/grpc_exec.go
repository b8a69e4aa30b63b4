package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/plugins/driver/driverpb"
)

// execChunkSize bounds one stdin/stdout/stderr message, well under gRPC's
// 4 MiB default message limit whatever size a caller writes.
const execChunkSize = 32 * 1024

// ---- agent side ----

// ExecTask streams opts' standard streams over one bidirectional call. The
// goroutine copying opts.Stdin ends when Stdin returns an error or EOF, or
// at its first read after the call ended: a Stdin that blocks forever
// keeps it parked (close your Stdin when ExecTask returns).
func (c *grpcClient) ExecTask(ctx context.Context, taskID string, opts *ExecOptions) (int, error) {
	if opts == nil {
		return 0, fmt.Errorf("exec in task %s: no exec options", taskID)
	}
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.ExecTask(streamCtx)
	if err != nil {
		return 0, fromStatus(ctx, err)
	}
	send := &lockedSender{send: stream.Send}
	err = send.msg(&driverpb.ExecTaskRequest{Msg: &driverpb.ExecTaskRequest_Setup{Setup: &driverpb.ExecSetup{
		TaskId: taskID, Command: opts.Command, Tty: opts.Tty, Stdin: opts.Stdin != nil,
	}}})
	if err != nil {
		return 0, c.execRecvError(ctx, stream)
	}
	if opts.Stdin != nil {
		go copyStdin(opts.Stdin, send)
	}
	if opts.Tty && opts.Resize != nil {
		go forwardResizes(streamCtx, opts.Resize, send)
	}
	stdout, stderr := writerOrDiscard(opts.Stdout), writerOrDiscard(opts.Stderr)
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("exec in task %s: stream ended without an exit code", taskID)
			}
			return 0, fromStatus(ctx, err)
		}
		switch m := resp.GetMsg().(type) {
		case *driverpb.ExecTaskResponse_Stdout:
			if _, err := stdout.Write(m.Stdout); err != nil {
				return 0, fmt.Errorf("exec in task %s: write stdout: %w", taskID, err)
			}
		case *driverpb.ExecTaskResponse_Stderr:
			if _, err := stderr.Write(m.Stderr); err != nil {
				return 0, fmt.Errorf("exec in task %s: write stderr: %w", taskID, err)
			}
		case *driverpb.ExecTaskResponse_Exit:
			return int(m.Exit.GetExitCode()), nil
		}
	}
}

// execRecvError finds out why a Send failed: gRPC reports the real status
// on Recv.
func (c *grpcClient) execRecvError(ctx context.Context, stream driverpb.Driver_ExecTaskClient) error {
	_, err := stream.Recv()
	if err == nil || errors.Is(err, io.EOF) {
		err = status.Error(codes.Unavailable, "exec stream closed")
	}
	return fromStatus(ctx, err)
}

func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// lockedSender serialises Sends: a gRPC stream allows only one sender at a
// time, and stdin, resizes (and setup) come from different goroutines.
type lockedSender struct {
	mu   sync.Mutex
	send func(*driverpb.ExecTaskRequest) error
}

func (s *lockedSender) msg(m *driverpb.ExecTaskRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.send(m)
}

func copyStdin(r io.Reader, send *lockedSender) {
	buf := make([]byte, execChunkSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			// Send encodes before it returns, so buf is free to reuse.
			if send.msg(&driverpb.ExecTaskRequest{Msg: &driverpb.ExecTaskRequest_Stdin{Stdin: buf[:n]}}) != nil {
				return
			}
		}
		if err != nil {
			// EOF or a broken reader: either way the command's stdin ends.
			_ = send.msg(&driverpb.ExecTaskRequest{Msg: &driverpb.ExecTaskRequest_StdinClose{StdinClose: &driverpb.StdinClose{}}})
			return
		}
	}
}

func forwardResizes(ctx context.Context, resize <-chan TerminalSize, send *lockedSender) {
	for {
		select {
		case <-ctx.Done():
			return
		case sz, ok := <-resize:
			if !ok {
				return
			}
			m := &driverpb.ExecTaskRequest{Msg: &driverpb.ExecTaskRequest_Resize{Resize: &driverpb.TerminalSize{
				Height: uint32(sz.Height), Width: uint32(sz.Width),
			}}}
			if send.msg(m) != nil {
				return
			}
		}
	}
}

// ---- plugin side ----

func (s *grpcServer) ExecTask(stream driverpb.Driver_ExecTaskServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	setup := first.GetSetup()
	if setup == nil {
		return status.Error(codes.InvalidArgument, "exec: first message must be setup")
	}
	out := &execOutput{send: stream.Send}
	opts := &ExecOptions{
		Command: setup.GetCommand(),
		Tty:     setup.GetTty(),
		Stdout:  out.writer(false),
		Stderr:  out.writer(true),
	}
	var stdinW *io.PipeWriter
	if setup.GetStdin() {
		var stdinR *io.PipeReader
		stdinR, stdinW = io.Pipe()
		opts.Stdin = stdinR
		// Unblocks the receive loop if the driver stops reading stdin.
		defer stdinR.Close()
	}
	var resize chan TerminalSize
	if setup.GetTty() {
		resize = make(chan TerminalSize, 4)
		opts.Resize = resize
	}
	go receiveExecInput(stream, stdinW, resize)

	code, err := s.impl.ExecTask(stream.Context(), setup.GetTaskId(), opts)
	out.close() // a driver goroutine still writing must not send after the handler returns
	if err != nil {
		return toStatus(err)
	}
	return out.sendLocked(&driverpb.ExecTaskResponse{Msg: &driverpb.ExecTaskResponse_Exit{Exit: &driverpb.ExecExit{ExitCode: int64(code)}}})
}

// receiveExecInput feeds the driver stdin and resizes until the client
// goes away or the handler returns (which ends the stream, so Recv fails).
func receiveExecInput(stream driverpb.Driver_ExecTaskServer, stdin *io.PipeWriter, resize chan TerminalSize) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			if stdin != nil {
				if errors.Is(err, io.EOF) {
					stdin.Close()
				} else {
					stdin.CloseWithError(err)
				}
			}
			return
		}
		switch m := msg.GetMsg().(type) {
		case *driverpb.ExecTaskRequest_Stdin:
			if stdin != nil {
				if _, err := stdin.Write(m.Stdin); err != nil {
					stdin = nil // the driver closed it: drop further input
				}
			}
		case *driverpb.ExecTaskRequest_StdinClose:
			if stdin != nil {
				stdin.Close()
				stdin = nil
			}
		case *driverpb.ExecTaskRequest_Resize:
			if resize == nil {
				continue
			}
			sz := TerminalSize{Height: uint16(m.Resize.GetHeight()), Width: uint16(m.Resize.GetWidth())}
			// Never block on a driver that does not read resizes: drop the
			// oldest pending size, the newest is the one that matters.
			select {
			case resize <- sz:
			default:
				select {
				case <-resize:
				default:
				}
				select {
				case resize <- sz:
				default:
				}
			}
		}
	}
}

// execOutput sends the driver's stdout and stderr writes as chunks, one
// Send at a time, and refuses writes once the handler is done.
type execOutput struct {
	mu     sync.Mutex
	closed bool
	send   func(*driverpb.ExecTaskResponse) error
}

func (o *execOutput) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// sendLocked sends m even after close (for the final exit message).
func (o *execOutput) sendLocked(m *driverpb.ExecTaskResponse) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.send(m)
}

func (o *execOutput) writer(stderr bool) io.Writer {
	return execStreamWriter{out: o, stderr: stderr}
}

type execStreamWriter struct {
	out    *execOutput
	stderr bool
}

func (w execStreamWriter) Write(p []byte) (int, error) {
	w.out.mu.Lock()
	defer w.out.mu.Unlock()
	written := 0
	for written < len(p) {
		if w.out.closed {
			return written, io.ErrClosedPipe
		}
		chunk := p[written:min(len(p), written+execChunkSize)]
		m := &driverpb.ExecTaskResponse{Msg: &driverpb.ExecTaskResponse_Stdout{Stdout: chunk}}
		if w.stderr {
			m = &driverpb.ExecTaskResponse{Msg: &driverpb.ExecTaskResponse_Stderr{Stderr: chunk}}
		}
		if err := w.out.send(m); err != nil {
			return written, fmt.Errorf("exec output: %w", err)
		}
		written += len(chunk)
	}
	return written, nil
}
