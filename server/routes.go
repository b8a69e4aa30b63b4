package server

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
)

// routes maps the /v1 API, Nomad's paths and methods, onto endpoints.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	s.handle(mux, "GET /v1/status/leader", routeLocal, s.statusLeader)
	s.handle(mux, "GET /v1/status/peers", routeLocal, s.statusPeers)

	s.handle(mux, "GET /v1/agent/self", routeLocal, s.agentSelf)
	s.handle(mux, "GET /v1/agent/members", routeLocal, s.agentMembers)
	s.handle(mux, "GET /v1/agent/health", routeLocal, s.agentHealth)
	s.handle(mux, "PUT /v1/agent/join", routeLocal, s.agentJoin)
	s.handle(mux, "POST /v1/agent/join", routeLocal, s.agentJoin)

	s.handle(mux, "GET /v1/operator/raft/configuration", routeRead, s.operatorRaftConfiguration)
	s.handle(mux, "DELETE /v1/operator/raft/peer", routeWrite, s.operatorRaftRemovePeer)
	s.handle(mux, "PUT /v1/operator/raft/transfer-leadership", routeWrite, s.operatorRaftTransferLeadership)
	s.handle(mux, "POST /v1/operator/raft/transfer-leadership", routeWrite, s.operatorRaftTransferLeadership)

	s.handle(mux, "GET /v1/jobs", routeRead, s.jobList)
	s.handle(mux, "PUT /v1/jobs", routeWrite, s.jobRegister)
	s.handle(mux, "POST /v1/jobs", routeWrite, s.jobRegister)
	// Job IDs may contain slashes (children of periodic jobs), so the
	// rest of the path is split by its known suffixes.
	s.handle(mux, "GET /v1/job/{rest...}", routeRead, s.jobRead)
	s.handle(mux, "PUT /v1/job/{rest...}", routeWrite, s.jobWrite)
	s.handle(mux, "POST /v1/job/{rest...}", routeWrite, s.jobWrite)
	s.handle(mux, "DELETE /v1/job/{rest...}", routeWrite, s.jobDeregister)

	s.handle(mux, "GET /v1/evaluations", routeRead, s.evalList)
	s.handle(mux, "GET /v1/evaluation/{id}", routeRead, s.evalInfo)
	s.handle(mux, "GET /v1/evaluation/{id}/allocations", routeRead, s.evalAllocations)

	s.handle(mux, "GET /v1/allocations", routeRead, s.allocList)
	s.handle(mux, "GET /v1/allocation/{id}", routeRead, s.allocInfo)
	s.handle(mux, "PUT /v1/allocation/{id}/stop", routeWrite, s.allocStop)
	s.handle(mux, "POST /v1/allocation/{id}/stop", routeWrite, s.allocStop)

	s.handle(mux, "GET /v1/nodes", routeRead, s.nodeList)
	s.handle(mux, "GET /v1/node/{id}", routeRead, s.nodeInfo)
	s.handle(mux, "GET /v1/node/{id}/allocations", routeRead, s.nodeAllocations)
	s.handle(mux, "PUT /v1/node/{id}/eligibility", routeWrite, s.nodeUpdateEligibility)
	s.handle(mux, "POST /v1/node/{id}/eligibility", routeWrite, s.nodeUpdateEligibility)
	s.handle(mux, "PUT /v1/node/{id}/drain", routeWrite, s.nodeUpdateDrain)
	s.handle(mux, "POST /v1/node/{id}/drain", routeWrite, s.nodeUpdateDrain)
	s.clientRoutes(mux)
	s.clientProxyRoutes(mux)

	s.schedulerRoutes(mux)

	s.handle(mux, "GET /v1/namespaces", routeRead, s.namespaceList)
	s.handle(mux, "GET /v1/namespace/{name}", routeRead, s.namespaceInfo)
	s.handle(mux, "PUT /v1/namespace", routeWrite, s.namespaceUpsert)
	s.handle(mux, "POST /v1/namespace", routeWrite, s.namespaceUpsert)
	s.handle(mux, "PUT /v1/namespace/{name}", routeWrite, s.namespaceUpsert)
	s.handle(mux, "POST /v1/namespace/{name}", routeWrite, s.namespaceUpsert)
	s.handle(mux, "DELETE /v1/namespace/{name}", routeWrite, s.namespaceDelete)

	if s.config.EnableDebug {
		// Nomad serves these under /v1/agent/pprof; the standard paths
		// work with `go tool pprof http://addr/debug/pprof/heap`.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			http.Error(w, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
			return
		}
		http.Error(w, "no such API endpoint: "+r.URL.Path, http.StatusNotFound)
	})
	return mux
}

// allowedMethods lists the methods some route serves for r's path; the
// catch-all above would otherwise turn every wrong method into a 404.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/v1/" {
			allow = append(allow, m)
		}
	}
	return allow
}
