package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/plugins/driver"
)

// The exec frames are the API client's (Nomad's wire shape).
type (
	ExecStreamingIOOperation = api.ExecStreamingIOOperation
	TerminalSize             = api.TerminalSize
	ExecStreamingInput       = api.ExecStreamingInput
	ExecStreamingExitResult  = api.ExecStreamingExitResult
	ExecStreamingOutput      = api.ExecStreamingOutput
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  32 * 1024,
	WriteBufferSize: 32 * 1024,
	// Requests arrive through the servers' proxy with the browser's Origin
	// left as is, so it never matches this agent's host; authorization is
	// the servers' job (ACL tokens), not the Origin header's.
	CheckOrigin: func(*http.Request) bool { return true },
}

// maxInputFrame bounds one client frame.
const maxInputFrame = 1 << 20

func (h *handler) exec(w http.ResponseWriter, r *http.Request) {
	allocID := r.PathValue("alloc")
	q := r.URL.Query()
	tty, err := parseBool(q.Get("tty"), "tty")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var command []string
	if err := json.Unmarshal([]byte(q.Get("command")), &command); err != nil || len(command) == 0 || command[0] == "" {
		h.writeError(w, r, badRequest("command must be a non-empty JSON array of strings, got %q", q.Get("command")))
		return
	}
	if q.Get("task") == "" {
		h.writeError(w, r, badRequest("missing task"))
		return
	}
	task, err := h.resolveTask(allocID, q.Get("task"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer conn.Close()
	conn.SetReadLimit(maxInputFrame)

	s := &execSession{conn: conn}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	stdinR, stdinW := io.Pipe()
	resize := make(chan driver.TerminalSize, 4)
	go s.readInput(ctx, cancel, stdinW, resize)

	opts := &driver.ExecOptions{
		Command: command,
		Tty:     tty,
		Stdin:   stdinR,
		Stdout: s.writer(func(d []byte) ExecStreamingOutput {
			return ExecStreamingOutput{Stdout: &ExecStreamingIOOperation{Data: d}}
		}),
		Stderr: s.writer(func(d []byte) ExecStreamingOutput {
			return ExecStreamingOutput{Stderr: &ExecStreamingIOOperation{Data: d}}
		}),
		Resize: resize,
	}
	code, err := h.allocs.Exec(ctx, allocID, task, opts)
	stdinR.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		if ctx.Err() == nil {
			h.logger.Debug("exec failed", "alloc_id", allocID, "task", task, "error", err)
		}
		// Nomad's client returns a close frame's text as the error.
		s.close(websocket.CloseInternalServerErr, truncateReason(err.Error()))
		return
	}
	if err := s.send(ExecStreamingOutput{Exited: true, Result: &ExecStreamingExitResult{ExitCode: code}}); err != nil {
		return
	}
	s.close(websocket.CloseNormalClosure, "")
}

// execSession serializes writes to one websocket.
type execSession struct {
	conn *websocket.Conn
	mu   sync.Mutex
}

func (s *execSession) send(v ExecStreamingOutput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return s.conn.WriteJSON(v)
}

func (s *execSession) close(code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(5*time.Second))
}

// writer turns a driver's stream into frames.
func (s *execSession) writer(frame func([]byte) ExecStreamingOutput) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if len(p) == 0 {
			return 0, nil
		}
		if err := s.send(frame(append([]byte(nil), p...))); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// readInput feeds client frames to stdin and the resize channel until the
// client goes away, which cancels the exec.
func (s *execSession) readInput(ctx context.Context, cancel context.CancelFunc, stdin *io.PipeWriter, resize chan driver.TerminalSize) {
	stdinOpen := true
	defer func() {
		if stdinOpen {
			stdin.CloseWithError(io.ErrUnexpectedEOF)
		}
	}()
	for {
		var in ExecStreamingInput
		if err := s.conn.ReadJSON(&in); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				cancel()
			}
			return
		}
		if in.Stdin != nil && stdinOpen {
			if len(in.Stdin.Data) > 0 {
				if _, err := stdin.Write(in.Stdin.Data); err != nil {
					stdinOpen = false // the command stopped reading
				}
			}
			if in.Stdin.Close {
				stdin.Close()
				stdinOpen = false
			}
		}
		if in.TTYSize != nil && in.TTYSize.Height > 0 && in.TTYSize.Width > 0 {
			size := driver.TerminalSize{Height: clampU16(in.TTYSize.Height), Width: clampU16(in.TTYSize.Width)}
			select {
			case resize <- size:
			case <-ctx.Done():
				return
			default: // a slow consumer misses intermediate sizes, not the session
			}
		}
	}
}

func clampU16(v int) uint16 {
	return uint16(min(max(v, 0), 65535))
}

// truncateReason fits a close reason in a control frame (125 bytes, 2 for
// the code).
func truncateReason(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:117] + "..."
}
