package clientapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/api"
)

// HostStats is what the handler needs to answer GET /v1/client/stats: a
// sample of this host's resource usage (hoststats.Collector).
type HostStats interface {
	Collect(ctx context.Context) (*api.HostStats, error)
}

// Option configures the handler beyond the allocation endpoints.
type Option func(*handler)

// WithHostStats serves GET /v1/client/stats from hs. nodeID is this
// agent's node: a request naming another node (node_id=…) is answered 404
// rather than with the wrong host's figures; "" accepts any.
func WithHostStats(hs HostStats, nodeID string) Option {
	return func(h *handler) { h.hostStats, h.nodeID = hs, nodeID }
}

// errNoHostStats answers /v1/client/stats on a handler built without
// WithHostStats.
var errNoHostStats = &httpError{code: http.StatusNotImplemented, msg: "host stats are not collected by this agent"}

func (h *handler) hostStatsHandler(w http.ResponseWriter, r *http.Request) {
	if h.hostStats == nil {
		h.writeError(w, r, errNoHostStats)
		return
	}
	if id := r.URL.Query().Get("node_id"); id != "" && h.nodeID != "" && id != h.nodeID {
		h.writeError(w, r, &httpError{code: http.StatusNotFound,
			msg: fmt.Sprintf("node %s not found: this agent is node %s", id, h.nodeID)})
		return
	}
	stats, err := h.hostStats.Collect(r.Context())
	if err != nil {
		h.writeError(w, r, fmt.Errorf("collect host stats: %w", err))
		return
	}
	writeJSON(w, stats)
}
