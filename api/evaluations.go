package api

import "github.com/berth-dev/berth/structs"

// Evaluations is the /v1/evaluations endpoint group.
type Evaluations struct{ c *Client }

// Evaluations returns the evaluations endpoints.
func (c *Client) Evaluations() *Evaluations { return &Evaluations{c: c} }

// List returns evaluations (GET /v1/evaluations).
func (e *Evaluations) List(q *QueryOptions) ([]*structs.Evaluation, *QueryMeta, error) {
	var out []*structs.Evaluation
	qm, err := e.c.query("/v1/evaluations", &out, q)
	if err != nil {
		return nil, nil, err
	}
	return out, qm, nil
}

// Info returns one evaluation (GET /v1/evaluation/:id).
func (e *Evaluations) Info(evalID string, q *QueryOptions) (*structs.Evaluation, *QueryMeta, error) {
	var out structs.Evaluation
	qm, err := e.c.query("/v1/evaluation/"+pathEscape(evalID), &out, q)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}
