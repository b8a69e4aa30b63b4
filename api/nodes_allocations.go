package api

import "github.com/berth-dev/berth/structs"

// Allocations returns the allocations placed on a node
// (GET /v1/node/:id/allocations).
func (n *Nodes) Allocations(nodeID string, q *QueryOptions) ([]*structs.Allocation, *QueryMeta, error) {
	var out []*structs.Allocation
	qm, err := n.c.query("/v1/node/"+pathEscape(nodeID)+"/allocations", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}
