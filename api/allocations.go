package api

import "github.com/berth-dev/berth/structs"

// Allocations is the /v1/allocations endpoint group.
type Allocations struct{ c *Client }

// Allocations returns the allocations endpoints.
func (c *Client) Allocations() *Allocations { return &Allocations{c: c} }

// List returns allocations (GET /v1/allocations).
func (a *Allocations) List(q *QueryOptions) ([]*structs.AllocListStub, *QueryMeta, error) {
	var out []*structs.AllocListStub
	qm, err := a.c.query("/v1/allocations", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}

// Info returns one allocation (GET /v1/allocation/:id).
func (a *Allocations) Info(allocID string, q *QueryOptions) (*structs.Allocation, *QueryMeta, error) {
	var out structs.Allocation
	qm, err := a.c.query("/v1/allocation/"+pathEscape(allocID), &out, q)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}
