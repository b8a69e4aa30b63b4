package api

import (
	"net/http"

	"github.com/berth-dev/berth/structs"
)

// Peers returns the allocation subnets of every other ready node and the
// address to route each through (GET /v1/client/node/:id/peers), for the
// node's network plugin. With q.WaitIndex set it is a blocking query that
// answers once a node joined, left, went down or came back past that
// index; feed the answer's LastIndex back in to keep following.
func (n *ClientNodes) Peers(nodeID, secret string, q *QueryOptions) ([]*structs.NodePeer, *QueryMeta, error) {
	var out []*structs.NodePeer
	r := n.c.newRequest(http.MethodGet, "/v1/client/node/"+pathEscape(nodeID)+"/peers")
	r.setQueryOptions(q)
	h, err := n.c.callNode(r, secret, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, parseQueryMeta(h), nil
}
