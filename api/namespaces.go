package api

import "github.com/berth-dev/berth/structs"

// Namespaces is the /v1/namespaces endpoint group.
type Namespaces struct{ c *Client }

// Namespaces returns the namespaces endpoints.
func (c *Client) Namespaces() *Namespaces { return &Namespaces{c: c} }

// List returns the namespaces (GET /v1/namespaces).
func (n *Namespaces) List(q *QueryOptions) ([]*structs.Namespace, *QueryMeta, error) {
	var out []*structs.Namespace
	qm, err := n.c.query("/v1/namespaces", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}

// Info returns one namespace (GET /v1/namespace/:name).
func (n *Namespaces) Info(name string, q *QueryOptions) (*structs.Namespace, *QueryMeta, error) {
	var out structs.Namespace
	qm, err := n.c.query("/v1/namespace/"+pathEscape(name), &out, q)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}
