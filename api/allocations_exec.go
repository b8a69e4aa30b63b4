package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The exec wire frames, as Nomad's: JSON text messages over a websocket.

// ExecStreamingIOOperation is a chunk of a stream, or its end.
type ExecStreamingIOOperation struct {
	Data  []byte `json:"data,omitempty"`
	Close bool   `json:"close,omitempty"`
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Height int `json:"height,omitempty"`
	Width  int `json:"width,omitempty"`
}

// ExecStreamingInput is one frame to the task: stdin or a resize; an
// empty frame is a heartbeat.
type ExecStreamingInput struct {
	Stdin   *ExecStreamingIOOperation `json:"stdin,omitempty"`
	TTYSize *TerminalSize             `json:"tty_size,omitempty"`
}

// ExecStreamingExitResult is the command's exit.
type ExecStreamingExitResult struct {
	ExitCode int `json:"exit_code"`
}

// ExecStreamingOutput is one frame from the task.
type ExecStreamingOutput struct {
	Stdout *ExecStreamingIOOperation `json:"stdout,omitempty"`
	Stderr *ExecStreamingIOOperation `json:"stderr,omitempty"`
	Exited bool                      `json:"exited,omitempty"`
	Result *ExecStreamingExitResult  `json:"result,omitempty"`
}

// execHeartbeat is how often an idle exec session sends a heartbeat.
const execHeartbeat = 10 * time.Second

// ErrExecNoExitCode is returned when an exec session ended without the
// command's exit code.
var ErrExecNoExitCode = errors.New("exec session ended without an exit code")

// Exec runs command in a task of the allocation, wiring stdin (may be nil)
// and the outputs through a websocket to the agent (via a server), and
// returns the command's exit code. With tty the task gets a terminal whose
// size follows the values sent on resize (may be nil). It returns when the
// command exits or ctx ends.
func (a *Allocations) Exec(ctx context.Context, allocID, task string, tty bool, command []string,
	stdin io.Reader, stdout, stderr io.Writer, resize <-chan TerminalSize, q *QueryOptions) (int, error) {
	conn, err := a.dialExec(ctx, allocID, task, tty, command, q)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// unblocks the reader below when the caller gives up
		<-ctx.Done()
		_ = conn.SetReadDeadline(time.Now())
	}()

	var mu sync.Mutex
	send := func(in ExecStreamingInput) error {
		mu.Lock()
		defer mu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		return conn.WriteJSON(in)
	}
	if stdin != nil {
		go pumpStdin(ctx, stdin, send)
	}
	go func() {
		t := time.NewTicker(execHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case size, ok := <-resize:
				if !ok {
					resize = nil
					continue
				}
				if send(ExecStreamingInput{TTYSize: &size}) != nil {
					return
				}
			case <-t.C:
				if send(ExecStreamingInput{}) != nil {
					return
				}
			}
		}
	}()

	for {
		var out ExecStreamingOutput
		if err := conn.ReadJSON(&out); err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				if ce.Code == websocket.CloseNormalClosure && ce.Text == "" {
					return -1, ErrExecNoExitCode
				}
				return -1, fmt.Errorf("exec in allocation %s: %s", allocID, ce.Text)
			}
			return -1, fmt.Errorf("exec in allocation %s: %w", allocID, err)
		}
		switch {
		case out.Stdout != nil && len(out.Stdout.Data) > 0 && stdout != nil:
			if _, err := stdout.Write(out.Stdout.Data); err != nil {
				return -1, fmt.Errorf("write exec stdout: %w", err)
			}
		case out.Stderr != nil && len(out.Stderr.Data) > 0 && stderr != nil:
			if _, err := stderr.Write(out.Stderr.Data); err != nil {
				return -1, fmt.Errorf("write exec stderr: %w", err)
			}
		case out.Exited:
			code := 0
			if out.Result != nil {
				code = out.Result.ExitCode
			}
			mu.Lock()
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			mu.Unlock()
			return code, nil
		}
	}
}

// pumpStdin sends stdin in chunks, then its end. A read blocked on a
// terminal cannot be interrupted; it ends with the process.
func pumpStdin(ctx context.Context, stdin io.Reader, send func(ExecStreamingInput) error) {
	buf := make([]byte, 32*1024)
	for ctx.Err() == nil {
		n, err := stdin.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if send(ExecStreamingInput{Stdin: &ExecStreamingIOOperation{Data: data}}) != nil {
				return
			}
		}
		if err != nil {
			_ = send(ExecStreamingInput{Stdin: &ExecStreamingIOOperation{Close: true}})
			return
		}
	}
}

func (a *Allocations) dialExec(ctx context.Context, allocID, task string, tty bool, command []string, q *QueryOptions) (*websocket.Conn, error) {
	cmdJSON, err := json.Marshal(command)
	if err != nil {
		return nil, fmt.Errorf("encode exec command: %w", err)
	}
	r := a.c.newRequest(http.MethodGet, "/v1/client/allocation/"+pathEscape(allocID)+"/exec")
	r.setQueryOptions(q)
	r.params.Set("task", task)
	r.params.Set("tty", strconv.FormatBool(tty))
	r.params.Set("command", string(cmdJSON))

	u := *a.c.baseURL
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	target := strings.TrimSuffix(u.String(), "/") + r.path + "?" + r.params.Encode()
	header := http.Header{}
	if r.token != "" {
		header.Set(HeaderToken, r.token)
	}
	dialer := &websocket.Dialer{HandshakeTimeout: a.c.config.Timeout, Proxy: http.ProxyFromEnvironment}
	if t, ok := a.c.http.Transport.(*http.Transport); ok && t != nil {
		dialer.TLSClientConfig = t.TLSClientConfig
		dialer.Proxy = t.Proxy
	}
	conn, resp, err := dialer.DialContext(ctx, target, header)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			return nil, &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(msg)), Method: http.MethodGet, Path: r.path}
		}
		return nil, fmt.Errorf("exec in allocation %s: %w", allocID, err)
	}
	return conn, nil
}
