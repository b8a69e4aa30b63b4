package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/berth-dev/berth/structs"
)

// The per-allocation client endpoints (logs, files, exec, stats, signal,
// restart) are served by the agent that runs the allocation, and host
// stats (/v1/client/stats?node_id=) by the agent of the node named. Any server
// answers them by looking the allocation up in its own state (a stale
// read is fine: allocations do not change nodes) and reverse-proxying the
// request to the node's HTTPAddr: path, query, body and headers unchanged,
// the answer streamed back as it comes (log follow), websocket upgrades
// passed through (exec).

// proxyDialTimeout bounds how long an unreachable agent can hold a request.
const proxyDialTimeout = 5 * time.Second

// fsOps are the /v1/client/fs operations Nomad's agents serve.
var fsOps = map[string]bool{"logs": true, "cat": true, "ls": true, "stat": true, "readat": true, "stream": true}

func (s *Server) clientProxyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/client/fs/{op}/{alloc}", func(w http.ResponseWriter, r *http.Request) {
		if !fsOps[r.PathValue("op")] {
			http.Error(w, "no such API endpoint: "+r.URL.Path, http.StatusNotFound)
			return
		}
		s.proxyToAgent(w, r, r.PathValue("alloc"))
	})
	for _, route := range []string{
		"GET /v1/client/allocation/{id}/exec",
		"GET /v1/client/allocation/{id}/stats",
		"PUT /v1/client/allocation/{id}/signal",
		"POST /v1/client/allocation/{id}/signal",
		"PUT /v1/client/allocation/{id}/restart",
		"POST /v1/client/allocation/{id}/restart",
	} {
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			s.proxyToAgent(w, r, r.PathValue("id"))
		})
	}
	// host stats name the node itself: GET /v1/client/stats?node_id=ID
	mux.HandleFunc("GET /v1/client/stats", s.proxyHostStats)
}

// proxyHostStats passes GET /v1/client/stats to the agent of the node
// named by node_id (an exact ID, as Nomad's servers take it).
func (s *Server) proxyHostStats(w http.ResponseWriter, r *http.Request) {
	nodeID := r.URL.Query().Get("node_id")
	if nodeID == "" {
		s.writeError(w, r, badRequest("missing node_id: host stats are served per node (GET /v1/client/stats?node_id=ID)"))
		return
	}
	node, err := s.State().NodeByID(nil, nodeID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if node == nil {
		s.writeError(w, r, notFound("node %s not found", nodeID))
		return
	}
	target, err := nodeTarget(node, "node "+node.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.reverseProxy(w, r, target, node, "node "+node.ID)
}

// errNodeDown refuses to proxy to a node the servers consider down.
var errNodeDown = errors.New("node is down")

// agentTarget returns the base URL of the agent that runs the allocation.
func (s *Server) agentTarget(allocID string) (*url.URL, *structs.Node, error) {
	st := s.State()
	alloc, err := st.AllocByID(nil, allocID)
	if err != nil {
		return nil, nil, err
	}
	if alloc == nil {
		return nil, nil, notFound("alloc not found")
	}
	node, err := st.NodeByID(nil, alloc.NodeID)
	if err != nil {
		return nil, nil, err
	}
	if node == nil {
		return nil, nil, notFound("node %s of allocation %s not found", alloc.NodeID, allocID)
	}
	target, err := nodeTarget(node, "allocation "+allocID)
	return target, node, err
}

// nodeTarget returns the base URL of node's agent HTTP API; what names
// the request's subject in errors ("allocation <id>", "node <id>").
func nodeTarget(node *structs.Node, what string) (*url.URL, error) {
	if node.Status == structs.NodeStatusDown {
		return nil, &codedError{code: http.StatusConflict,
			msg: fmt.Sprintf("%s: node %s: %v", what, node.ID, errNodeDown)}
	}
	if node.HTTPAddr == "" {
		return nil, &codedError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("%s: node %s has no HTTP address", what, node.ID)}
	}
	scheme := "http"
	if node.TLSEnabled {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: node.HTTPAddr}, nil
}

func (s *Server) proxyToAgent(w http.ResponseWriter, r *http.Request, allocID string) {
	target, node, err := s.agentTarget(allocID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.reverseProxy(w, r, target, node, "allocation "+allocID)
}

// reverseProxy streams r to node's agent at target and the answer back.
func (s *Server) reverseProxy(w http.ResponseWriter, r *http.Request, target *url.URL, node *structs.Node, what string) {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
		},
		Transport: agentTransport(),
		// stream every write at once: followed logs, exec output
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.logger.Warn("proxy to agent failed", "node_id", node.ID, "for", what, "path", r.URL.Path, "error", err)
			http.Error(w, fmt.Sprintf("node %s (%s) serving %s is unreachable: %v",
				node.ID, node.HTTPAddr, what, err), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// agentTransport is shared by all proxied requests so that connections to
// agents are reused. It has no overall timeout: streams last as long as
// the client wants them.
var agentTransport = sync.OnceValue(func() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: proxyDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   proxyDialTimeout,
		ExpectContinueTimeout: time.Second,
	}
})
