package api

import (
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/structs"
)

// Operator is the /v1/operator endpoint group.
type Operator struct{ c *Client }

// Operator returns the operator endpoints.
func (c *Client) Operator() *Operator { return &Operator{c: c} }

// RaftGetConfiguration returns the Raft peer set
// (GET /v1/operator/raft/configuration).
func (o *Operator) RaftGetConfiguration(q *QueryOptions) (*structs.RaftConfiguration, error) {
	var out structs.RaftConfiguration
	if _, err := o.c.query("/v1/operator/raft/configuration", &out, q); err != nil {
		return nil, err
	}
	return &out, nil
}

// RaftRemovePeerByAddress removes the peer with Raft address "ip:port".
func (o *Operator) RaftRemovePeerByAddress(address string, w *WriteOptions) error {
	return o.raftPeerOp(http.MethodDelete, "/v1/operator/raft/peer", "address", address, w)
}

// RaftRemovePeerByID removes the peer with Raft server ID id.
func (o *Operator) RaftRemovePeerByID(id string, w *WriteOptions) error {
	return o.raftPeerOp(http.MethodDelete, "/v1/operator/raft/peer", "id", id, w)
}

// RaftTransferLeadershipByAddress asks the leader to hand leadership to the
// peer with Raft address "ip:port".
func (o *Operator) RaftTransferLeadershipByAddress(address string, w *WriteOptions) error {
	return o.raftPeerOp(http.MethodPut, "/v1/operator/raft/transfer-leadership", "address", address, w)
}

// RaftTransferLeadershipByID asks the leader to hand leadership to the peer
// with Raft server ID id.
func (o *Operator) RaftTransferLeadershipByID(id string, w *WriteOptions) error {
	return o.raftPeerOp(http.MethodPut, "/v1/operator/raft/transfer-leadership", "id", id, w)
}

func (o *Operator) raftPeerOp(method, path, key, value string, w *WriteOptions) error {
	_, err := o.c.write(method, path, url.Values{key: {value}}, nil, nil, w)
	return err
}
