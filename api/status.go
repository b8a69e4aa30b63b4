package api

// Status is the /v1/status endpoint group.
type Status struct{ c *Client }

// Status returns the status endpoints.
func (c *Client) Status() *Status { return &Status{c: c} }

// Leader returns the Raft address ("ip:port") of the leader of the client's
// region; "" when the cluster has none.
func (s *Status) Leader() (string, error) {
	return s.LeaderOpts(nil)
}

// LeaderOpts is Leader with query options (e.g. another region).
func (s *Status) LeaderOpts(q *QueryOptions) (string, error) {
	var leader string
	if _, err := s.c.query("/v1/status/leader", &leader, q); err != nil {
		return "", err
	}
	return leader, nil
}

// Peers returns the Raft addresses of the region's servers.
func (s *Status) Peers() ([]string, error) {
	return s.PeersOpts(nil)
}

// PeersOpts is Peers with query options.
func (s *Status) PeersOpts(q *QueryOptions) ([]string, error) {
	var peers []string
	if _, err := s.c.query("/v1/status/peers", &peers, q); err != nil {
		return nil, err
	}
	return peers, nil
}
