// Package structs holds berth's domain types: jobs, allocations, evaluations,
// nodes, namespaces and the request/response shapes of the HTTP API. Field
// names and JSON encoding match Nomad's /v1 wire format so that Nomad's own
// clients and job files work against berth unchanged.
//
// structs imports only the standard library.
package structs
