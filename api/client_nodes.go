package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/structs"
)

// HeaderNodeSecret authenticates the /v1/client/* calls of an agent (or of
// the node simulator): the SecretID of the node it speaks for.
const HeaderNodeSecret = "X-Berth-Node-Secret"

// ClientNodes is the /v1/client endpoint group that agents use to register
// their node, heartbeat, watch the node's allocations and report how they
// run. Every call carries the node's secret.
type ClientNodes struct{ c *Client }

// ClientNodes returns the agent-side endpoints.
func (c *Client) ClientNodes() *ClientNodes { return &ClientNodes{c: c} }

// Register registers (or re-registers) node (PUT /v1/client/node/register),
// authenticated by node.SecretID. The answer says how soon to heartbeat.
func (n *ClientNodes) Register(node *structs.Node, w *WriteOptions) (*structs.NodeHeartbeatResponse, error) {
	if node == nil {
		return nil, fmt.Errorf("register node: no node")
	}
	var out structs.NodeHeartbeatResponse
	r := n.c.newRequest(http.MethodPut, "/v1/client/node/register")
	r.setWriteOptions(w)
	r.body = &structs.NodeRegisterRequest{Node: node}
	if _, err := n.c.callNode(r, node.SecretID, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Heartbeat tells the servers the node is alive
// (PUT /v1/client/node/:id/heartbeat). A node that was down or
// initializing becomes ready.
func (n *ClientNodes) Heartbeat(nodeID, secret string, w *WriteOptions) (*structs.NodeHeartbeatResponse, error) {
	var out structs.NodeHeartbeatResponse
	r := n.c.newRequest(http.MethodPut, "/v1/client/node/"+pathEscape(nodeID)+"/heartbeat")
	r.setWriteOptions(w)
	if _, err := n.c.callNode(r, secret, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Allocations returns the node's allocations, each with its Job
// (GET /v1/client/node/:id/allocations). With q.WaitIndex set it is a
// blocking query that answers once something changed past that index.
func (n *ClientNodes) Allocations(nodeID, secret string, q *QueryOptions) ([]*structs.Allocation, *QueryMeta, error) {
	var out []*structs.Allocation
	r := n.c.newRequest(http.MethodGet, "/v1/client/node/"+pathEscape(nodeID)+"/allocations")
	r.setQueryOptions(q)
	h, err := n.c.callNode(r, secret, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, parseQueryMeta(h), nil
}

// AllocationsInto is Allocations decoding the answer into out, which must
// be a pointer to a slice of structs; JSON fields out does not declare are
// skipped. For callers that follow thousands of nodes and need a few
// fields of each allocation (the node simulator).
func (n *ClientNodes) AllocationsInto(nodeID, secret string, q *QueryOptions, out any) (*QueryMeta, error) {
	r := n.c.newRequest(http.MethodGet, "/v1/client/node/"+pathEscape(nodeID)+"/allocations")
	r.setQueryOptions(q)
	h, err := n.c.callNode(r, secret, out)
	if err != nil {
		return nil, err
	}
	return parseQueryMeta(h), nil
}

// ClientAllocStub is what AllocationStubs answers of each allocation: enough
// to tell which allocations the servers changed since the last answer.
type ClientAllocStub struct {
	ID string
	// AllocModifyIndex moves only with the servers' changes (placement,
	// stop, a new job version), not with the agent's status updates.
	AllocModifyIndex uint64
	ModifyIndex      uint64
	DesiredStatus    string
	ClientStatus     string
}

// AllocationStubs is Allocations without the allocations' bodies
// (GET /v1/client/node/:id/allocations?stubs=true): the blocking query an
// agent holds to learn, cheaply, which of its allocations to fetch whole.
func (n *ClientNodes) AllocationStubs(nodeID, secret string, q *QueryOptions) ([]ClientAllocStub, *QueryMeta, error) {
	var out []ClientAllocStub
	r := n.c.newRequest(http.MethodGet, "/v1/client/node/"+pathEscape(nodeID)+"/allocations")
	r.setQueryOptions(q)
	r.params.Set("stubs", "true")
	h, err := n.c.callNode(r, secret, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, parseQueryMeta(h), nil
}

// allocUpdateResponse is the answer of PUT /v1/client/allocations/update.
type allocUpdateResponse struct {
	Index uint64
}

// UpdateAllocations reports the client status of allocations, batched
// (PUT /v1/client/allocations/update). Only ClientStatus,
// ClientDescription, TaskStates and ModifyTime of each are taken, so
// callers may send trimmed copies. It returns the Raft index of the write.
func (n *ClientNodes) UpdateAllocations(secret string, allocs []*structs.Allocation, w *WriteOptions) (uint64, error) {
	var out allocUpdateResponse
	r := n.c.newRequest(http.MethodPut, "/v1/client/allocations/update")
	r.setWriteOptions(w)
	r.body = &structs.AllocClientUpdateRequest{Allocs: allocs}
	h, err := n.c.callNode(r, secret, &out)
	if err != nil {
		return 0, err
	}
	if out.Index == 0 {
		out.Index, _ = strconv.ParseUint(h.Get(HeaderIndex), 10, 64)
	}
	return out.Index, nil
}

// callNode is call with the node secret header.
func (c *Client) callNode(r *request, secret string, out any) (http.Header, error) {
	if secret != "" {
		r.header = http.Header{HeaderNodeSecret: []string{secret}}
	}
	h, _, err := c.call(r, out)
	return h, err
}

// NewPooledHTTPClient returns an HTTP client for one process that speaks
// for many nodes (the node simulator, a load generator): keep-alive
// connections shared by all, up to maxConns to the one server, no
// overall timeout (each request is bounded by the client's Timeout plus
// its blocking wait).
func NewPooledHTTPClient(maxConns int) *http.Client {
	t := defaultTransport()
	t.MaxIdleConns = maxConns
	t.MaxIdleConnsPerHost = maxConns
	t.MaxConnsPerHost = maxConns
	t.IdleConnTimeout = 90 * time.Second
	t.ForceAttemptHTTP2 = false
	return &http.Client{Transport: t}
}
