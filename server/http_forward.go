package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// How long a request waits for a leader to be elected or to catch up
// before it is refused with 503; long enough to ride out a failover.
const leaderWait = 3 * time.Second

// maxForwardHops bounds forwarding while leadership moves.
const maxForwardHops = 3

// forwardIfNeeded sends the request to the leader unless this server is
// the leader. It reports whether it wrote the response.
func (s *Server) forwardIfNeeded(w http.ResponseWriter, r *http.Request) (bool, error) {
	deadline := time.Now().Add(leaderWait)
	var body []byte
	bodyRead := false
	for {
		if s.raft.State() == raft.Leader {
			if s.leaderReady.Load() {
				return false, nil
			}
		} else if _, id := s.Leader(); id != "" {
			hops, _ := strconv.Atoi(r.Header.Get(headerForwarded))
			if hops >= maxForwardHops {
				// servers that disagree about who leads must not bounce
				// a request between them for ever
				return false, fmt.Errorf("%w: request forwarded %d times without reaching the leader", ErrNotLeader, hops)
			}
			if m := s.members.serverByID(string(id)); m != nil && m.Tags[tagHTTPAddr] != "" {
				if !bodyRead {
					// buffered, so that a request that never reached a
					// dead leader can be sent again to the next one
					var err error
					if body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.config.MaxRequestBody)); err != nil {
						return false, err
					}
					bodyRead = true
				}
				err := s.forward(w, r, m.Tags[tagHTTPAddr], body)
				if !errors.Is(err, errLeaderUnreachable) || time.Now().After(deadline) {
					return true, err
				}
			}
		}
		if time.Now().After(deadline) {
			if s.raft.State() == raft.Leader {
				return false, ErrLeaderNotReady
			}
			return false, ErrNoLeader
		}
		select {
		case <-r.Context().Done():
			return false, r.Context().Err()
		case <-s.shutdownCh:
			return false, ErrShutdown
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// errLeaderUnreachable means the request could not be delivered at all
// (the connection was refused), so sending it again is safe.
var errLeaderUnreachable = errors.New("leader unreachable")

// errNotApplied marks a write refused before its entry reached the Raft
// log, so running it again cannot apply it twice.
var errNotApplied = errors.New("not applied")

func (s *Server) forward(w http.ResponseWriter, r *http.Request, leaderHTTP string, body []byte) error {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+leaderHTTP+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("forward to leader: %w", err)
	}
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	hops, _ := strconv.Atoi(r.Header.Get(headerForwarded))
	out.Header.Set(headerForwarded, strconv.Itoa(hops+1))
	resp, err := s.forwarder.Do(out)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return fmt.Errorf("%w: %w: forward to %s: %v", ErrNoLeader, errLeaderUnreachable, leaderHTTP, err)
		}
		return fmt.Errorf("%w: forward to leader at %s: %v", ErrNoLeader, leaderHTTP, err)
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.logger.Debug("copy forwarded response", "error", err)
	}
	return nil
}
