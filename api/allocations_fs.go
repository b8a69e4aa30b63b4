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
)

// Log types and origins of AllocFS.Logs.
const (
	LogTypeStdout = "stdout"
	LogTypeStderr = "stderr"
	OriginStart   = "start"
	OriginEnd     = "end"
)

// StreamFrame is one frame of a log stream (Nomad's): Data read at Offset
// of File, or a FileEvent ("file deleted", "file truncated"). A frame with
// nothing set is a heartbeat.
type StreamFrame struct {
	Offset    int64  `json:",omitempty"`
	Data      []byte `json:",omitempty"`
	File      string `json:",omitempty"`
	FileEvent string `json:",omitempty"`
}

// IsHeartbeat reports whether the frame only keeps the stream alive.
func (f *StreamFrame) IsHeartbeat() bool {
	return len(f.Data) == 0 && f.FileEvent == "" && f.File == "" && f.Offset == 0
}

// AllocFS reads the files of allocations (served by their agents).
type AllocFS struct{ c *Client }

// AllocFS returns the allocation file-system endpoints.
func (c *Client) AllocFS() *AllocFS { return &AllocFS{c: c} }

// Logs streams a task's stdout or stderr (logType), from origin ("start"
// or "end") moved by offset bytes; with follow it keeps streaming what the
// task writes until ctx ends. Frames arrive in order, heartbeats left out;
// both channels are closed when the stream ends, the error channel
// holding at most one error (none for a clean end or ctx's end).
func (f *AllocFS) Logs(ctx context.Context, allocID, task, logType, origin string, offset int64, follow bool, q *QueryOptions) (<-chan *StreamFrame, <-chan error) {
	frames := make(chan *StreamFrame, 16)
	errCh := make(chan error, 1)
	r := f.c.newRequest(http.MethodGet, "/v1/client/fs/logs/"+pathEscape(allocID))
	r.setQueryOptions(q)
	r.params.Set("task", task)
	r.params.Set("type", logType)
	r.params.Set("origin", origin)
	r.params.Set("offset", strconv.FormatInt(offset, 10))
	r.params.Set("follow", strconv.FormatBool(follow))
	go func() {
		defer close(errCh)
		defer close(frames)
		resp, err := f.c.stream(ctx, r)
		if err != nil {
			if ctx.Err() == nil {
				errCh <- err
			}
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var fr StreamFrame
			if err := dec.Decode(&fr); err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					errCh <- fmt.Errorf("read log stream of allocation %s: %w", allocID, err)
				}
				return
			}
			if fr.IsHeartbeat() {
				continue
			}
			select {
			case frames <- &fr:
			case <-ctx.Done():
				return
			}
		}
	}()
	return frames, errCh
}

// stream sends r bound only by ctx (no overall timeout: the answer may
// last as long as the caller wants) and returns the open response of a
// 2xx answer, or a *StatusError.
func (c *Client) stream(ctx context.Context, r *request) (*http.Response, error) {
	target := c.baseURL.String() + r.path
	if q := r.params.Encode(); q != "" {
		target += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if r.token != "" {
		req.Header.Set(HeaderToken, r.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(msg)), Method: r.method, Path: r.path}
	}
	return resp, nil
}
