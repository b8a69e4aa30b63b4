package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/agent/logs"
)

// heartbeatInterval is how often an idle followed stream sends an empty
// frame, so proxies and clients see the connection alive (Nomad: 10 s).
var heartbeatInterval = 10 * time.Second

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	allocID := r.PathValue("alloc")
	q := r.URL.Query()
	follow, err := parseBool(q.Get("follow"), "follow")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	plain, err := parseBool(q.Get("plain"), "plain")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	kind := q.Get("type")
	if kind != "stdout" && kind != "stderr" {
		h.writeError(w, r, badRequest("must provide log type stdout or stderr, got %q", kind))
		return
	}
	origin := q.Get("origin")
	if origin == "" {
		origin = logs.OriginStart
	}
	if origin != logs.OriginStart && origin != logs.OriginEnd {
		h.writeError(w, r, badRequest("origin must be start or end, got %q", origin))
		return
	}
	var offset int64
	if s := q.Get("offset"); s != "" {
		if offset, err = strconv.ParseInt(s, 10, 64); err != nil || offset < 0 {
			h.writeError(w, r, badRequest("invalid offset %q", s))
			return
		}
	}
	task, err := h.resolveTask(allocID, q.Get("task"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	dir, err := h.allocs.LogDir(allocID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}

	if plain {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()

	var mu sync.Mutex // emit and the heartbeat share the writer
	enc := json.NewEncoder(w)
	write := func(f logs.StreamFrame) error {
		mu.Lock()
		defer mu.Unlock()
		var err error
		if plain {
			if len(f.Data) > 0 {
				_, err = w.Write(f.Data)
			}
		} else {
			err = enc.Encode(f)
		}
		if err == nil {
			flush()
		}
		return err
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var heartbeats sync.WaitGroup
	// The heartbeat must be gone before the handler returns (the writer is
	// invalid afterwards): deferred calls run cancel, then Wait.
	defer heartbeats.Wait()
	defer cancel()
	if follow && !plain {
		heartbeats.Add(1)
		go func() {
			defer heartbeats.Done()
			t := time.NewTicker(heartbeatInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if write(logs.StreamFrame{}) != nil {
						cancel()
						return
					}
				}
			}
		}()
	}
	err = logs.Stream(ctx, dir, task, kind, origin, offset, follow, write)
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		// Headers are out: all we can do is log and end the stream.
		h.logger.Debug("log stream ended", "alloc_id", allocID, "task", task, "error", err)
	}
}

func parseBool(s, name string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest("invalid %s %q: want true or false", name, s)
	}
	return b, nil
}
