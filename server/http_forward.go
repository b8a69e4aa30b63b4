package server

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// How long a request waits for a leader to be elected or to catch up
// before it is refused with 503; long enough to ride out a failover.
const leaderWait = 3 * time.Second

// forwardIfNeeded sends the request to the leader unless this server is
// the leader. It reports whether it wrote the response.
func (s *Server) forwardIfNeeded(w http.ResponseWriter, r *http.Request) (bool, error) {
	deadline := time.Now().Add(leaderWait)
	for {
		if s.raft.State() == raft.Leader {
			if s.leaderReady.Load() {
				return false, nil
			}
		} else if _, id := s.Leader(); id != "" {
			if r.Header.Get(headerForwarded) != "" {
				// never bounce a request between two servers that
				// disagree about who leads
				return false, fmt.Errorf("%w: forwarded request reached a follower", ErrNotLeader)
			}
			if m := s.members.serverByID(string(id)); m != nil && m.Tags[tagHTTPAddr] != "" {
				return true, s.forward(w, r, m.Tags[tagHTTPAddr])
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

func (s *Server) forward(w http.ResponseWriter, r *http.Request, leaderHTTP string) error {
	body := http.MaxBytesReader(w, r.Body, s.config.MaxRequestBody)
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+leaderHTTP+r.URL.RequestURI(), body)
	if err != nil {
		return fmt.Errorf("forward to leader: %w", err)
	}
	out.ContentLength = r.ContentLength
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	out.Header.Set(headerForwarded, s.name)
	resp, err := s.forwarder.Do(out)
	if err != nil {
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
