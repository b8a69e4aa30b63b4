package api

import "github.com/berth-dev/berth/structs"

// Nodes is the /v1/nodes endpoint group.
type Nodes struct{ c *Client }

// Nodes returns the nodes endpoints.
func (c *Client) Nodes() *Nodes { return &Nodes{c: c} }

// List returns the nodes (GET /v1/nodes).
func (n *Nodes) List(q *QueryOptions) ([]*structs.NodeListStub, *QueryMeta, error) {
	var out []*structs.NodeListStub
	qm, err := n.c.query("/v1/nodes", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}

// Info returns one node (GET /v1/node/:id).
func (n *Nodes) Info(nodeID string, q *QueryOptions) (*structs.Node, *QueryMeta, error) {
	var out structs.Node
	qm, err := n.c.query("/v1/node/"+pathEscape(nodeID), &out, q)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}
