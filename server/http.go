package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// How a route is served.
type routeKind int

const (
	// routeLocal is answered by whichever server receives it.
	routeLocal routeKind = iota
	// routeRead is answered by the leader, or locally with ?stale.
	routeRead
	// routeWrite is always answered by the leader.
	routeWrite
)

const (
	headerIndex       = "X-Nomad-Index"
	headerKnownLeader = "X-Nomad-KnownLeader"
	headerLastContact = "X-Nomad-LastContact"
	headerToken       = "X-Nomad-Token"
	headerForwarded   = "X-Berth-Forwarded"

	defaultBlockingWait = 5 * time.Minute
	maxBlockingWait     = 10 * time.Minute
)

// request is what the pipeline hands to an endpoint.
type request struct {
	*http.Request
	w         http.ResponseWriter
	namespace string
	region    string
	token     string
	stale     bool
	minIndex  uint64
	wait      time.Duration
	prefix    string
	// index is the Raft index the response is current as of.
	index uint64
	// status, when set, replaces 200 for a successful body (health checks
	// answer their JSON with 500 when unhealthy, as Nomad does).
	status int
}

// endpoint handles one route; it returns the value to encode as JSON.
type endpoint func(req *request) (any, error)

// codedError carries an HTTP status code and a message for the client.
type codedError struct {
	code int
	msg  string
}

func (e *codedError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &codedError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &codedError{code: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) setupHTTPListener() error {
	addr := hostPort(s.config.BindAddr, s.config.HTTPPort)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w", addr, err)
	}
	s.httpListener = l
	s.httpAddr = hostPort(s.advertiseIP, l.Addr().(*net.TCPAddr).Port)
	s.httpServer = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          newStdLogger(s.baseLogger.With("component", "http")),
	}
	return nil
}

func (s *Server) serveHTTP() {
	err := s.httpServer.Serve(s.httpListener)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.logger.Error("HTTP server stopped", "error", err)
	}
}

// handle registers an endpoint behind the request pipeline.
func (s *Server) handle(mux *http.ServeMux, pattern string, kind routeKind, fn endpoint) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, kind, fn)
	})
}

// serve is the one request pipeline every endpoint goes through: parse
// the query, forward to the leader when needed, run, encode, map errors.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, kind routeKind, fn endpoint) {
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("panic in HTTP handler", "path", r.URL.Path, "panic", p)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	req, err := s.parseRequest(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.ContentLength > s.config.MaxRequestBody {
		s.writeError(w, r, &http.MaxBytesError{Limit: s.config.MaxRequestBody})
		return
	}
	// The body is buffered so that a request can be run again when
	// leadership moved before its entry reached the log.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.config.MaxRequestBody))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	needsLeader := kind == routeWrite || (kind == routeRead && !req.stale)
	deadline := time.Now().Add(leaderWait)
	var out any
	for {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if needsLeader {
			forwarded, err := s.forwardIfNeeded(w, r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if forwarded {
				return
			}
		}
		out, err = fn(req)
		if errors.Is(err, errNotApplied) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		break
	}
	// the index headers go on refusals too, so clients can block on a 404
	s.setMeta(w, req.index)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if req.status != 0 {
		w.WriteHeader(req.status)
	}
	enc := json.NewEncoder(w)
	if _, pretty := r.URL.Query()["pretty"]; pretty {
		enc.SetIndent("", "    ")
	}
	if err := enc.Encode(out); err != nil {
		s.logger.Debug("write HTTP response", "path", r.URL.Path, "error", err)
	}
}

func (s *Server) parseRequest(w http.ResponseWriter, r *http.Request) (*request, error) {
	q := r.URL.Query()
	req := &request{Request: r, w: w, namespace: q.Get("namespace"), region: q.Get("region"), prefix: q.Get("prefix")}
	if req.namespace == "" {
		req.namespace = structs.DefaultNamespace
	}
	if req.region != "" && req.region != s.config.Region {
		return nil, badRequest("unknown region %q (this cluster is %q)", req.region, s.config.Region)
	}
	_, req.stale = q["stale"]
	if v := q.Get("stale"); v == "false" {
		req.stale = false
	}
	req.token = r.Header.Get(headerToken)
	if auth := r.Header.Get("Authorization"); req.token == "" && strings.HasPrefix(auth, "Bearer ") {
		req.token = strings.TrimPrefix(auth, "Bearer ")
	}
	if v := q.Get("index"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, badRequest("invalid index %q: %v", v, err)
		}
		req.minIndex = idx
	}
	req.wait = defaultBlockingWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			// Nomad also accepts a bare number of seconds.
			secs, err2 := strconv.Atoi(v)
			if err2 != nil {
				return nil, badRequest("invalid wait %q: %v", v, err)
			}
			d = time.Duration(secs) * time.Second
		}
		if d < 0 {
			return nil, badRequest("invalid wait %q: negative", v)
		}
		req.wait = min(d, maxBlockingWait)
	}
	return req, nil
}

// setMeta writes the headers Nomad's clients read on every response.
func (s *Server) setMeta(w http.ResponseWriter, index uint64) {
	h := w.Header()
	if index == 0 {
		index = 1
	}
	h.Set(headerIndex, strconv.FormatUint(index, 10))
	addr, _ := s.Leader()
	h.Set(headerKnownLeader, strconv.FormatBool(addr != ""))
	var lastContact time.Duration
	if s.raft != nil && s.raft.State().String() != "Leader" {
		if lc := s.raft.LastContact(); !lc.IsZero() {
			lastContact = time.Since(lc)
		}
	}
	h.Set(headerLastContact, strconv.FormatInt(lastContact.Milliseconds(), 10))
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := http.StatusInternalServerError, err.Error()
	var ce *codedError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ce):
		code = ce.code
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	case errors.Is(err, state.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, state.ErrInvalidRequest):
		code = http.StatusBadRequest
	case errors.Is(err, state.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader), errors.Is(err, ErrLeaderNotReady),
		errors.Is(err, ErrShutdown), errors.Is(err, ErrPeersTooOld), errors.Is(err, fsm.ErrStopped):
		code = http.StatusServiceUnavailable
	}
	if code >= 500 && code != http.StatusServiceUnavailable {
		s.logger.Error("HTTP request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	} else {
		s.logger.Debug("HTTP request refused", "method", r.Method, "path", r.URL.Path, "code", code, "error", err)
	}
	http.Error(w, msg, code)
}

// decodeBody decodes a JSON request body, refusing trailing garbage.
func decodeBody(req *request, out any) error {
	dec := json.NewDecoder(req.Body)
	if err := dec.Decode(out); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("failed to parse JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("failed to parse JSON body: unexpected data after the JSON object")
	}
	return nil
}

// blockingQuery runs fn against the state until its index passes the
// request's ?index, up to ?wait, and records the index for the headers.
func (s *Server) blockingQuery(req *request, fn state.QueryFunc) error {
	ctx := req.Context()
	if req.minIndex > 0 {
		var cancel context.CancelFunc
		// jitter spreads wake-ups of many watchers of one index
		ctx, cancel = context.WithTimeout(ctx, req.wait+time.Duration(req.minIndex%16)*time.Millisecond)
		defer cancel()
	}
	var err error
	req.index, err = state.Blocking(ctx, s.fsm.State, req.minIndex, fn)
	return err
}

// queryIndex is the larger of the given tables' indexes, watched.
func queryIndex(ws memdb.WatchSet, st *state.StateStore, tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		if i := st.Index(ws, t); i > max {
			max = i
		}
	}
	return max
}
