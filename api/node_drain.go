package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/structs"
)

// NodeUpdateDrainRequest is the body of PUT /v1/node/:id/drain (Nomad's).
type NodeUpdateDrainRequest struct {
	NodeID string
	// DrainSpec starts or changes a drain; nil cancels it.
	DrainSpec *structs.DrainSpec
	// MarkEligible makes the node eligible again when a drain is cancelled.
	MarkEligible bool
	Meta         map[string]string `json:",omitempty"`
}

// NodeDrainUpdateResponse answers a drain update.
type NodeDrainUpdateResponse struct {
	NodeModifyIndex uint64
	EvalIDs         []string
	EvalCreateIndex uint64
	Index           uint64
}

// UpdateDrain starts (spec non-nil) or cancels (nil) a node's drain. A
// spec's Deadline is Nomad's: negative forces the drain now, zero means no
// deadline.
func (n *Nodes) UpdateDrain(nodeID string, spec *structs.DrainSpec, markEligible bool, w *WriteOptions) (*NodeDrainUpdateResponse, *WriteMeta, error) {
	return n.UpdateDrainOpts(nodeID, &NodeUpdateDrainRequest{DrainSpec: spec, MarkEligible: markEligible}, w)
}

// UpdateDrainOpts is UpdateDrain with the whole request (Meta included).
func (n *Nodes) UpdateDrainOpts(nodeID string, req *NodeUpdateDrainRequest, w *WriteOptions) (*NodeDrainUpdateResponse, *WriteMeta, error) {
	body := *req
	body.NodeID = nodeID
	var out NodeDrainUpdateResponse
	wm, err := n.c.write(http.MethodPut, "/v1/node/"+pathEscape(nodeID)+"/drain", nil, &body, &out, w)
	if err != nil {
		return nil, nil, err
	}
	return &out, wm, nil
}

// WaitDrainDone blocks (through blocking queries) until the node's drain
// is over, calling onChange (if set) with every new version of the node.
// It returns the node as it was when the drain ended, or ctx's error.
func (n *Nodes) WaitDrainDone(ctx context.Context, nodeID string, onChange func(*structs.Node)) (*structs.Node, error) {
	var index uint64
	for {
		node, qm, err := n.Info(nodeID, (&QueryOptions{WaitIndex: index}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("watch node %s: %w", nodeID, err)
		}
		if onChange != nil && qm.LastIndex != index {
			onChange(node)
		}
		if node.DrainStrategy == nil {
			return node, nil
		}
		index = max(qm.LastIndex, index)
	}
}
