package server

import (
	"github.com/hashicorp/raft"
)

// statusLeader answers the leader's Raft address, "" when there is none.
func (s *Server) statusLeader(req *request) (any, error) {
	addr, _ := s.Leader()
	return string(addr), nil
}

// statusPeers answers the Raft addresses of the voters this server knows.
func (s *Server) statusPeers(req *request) (any, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	peers := []string{}
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			peers = append(peers, string(srv.Address))
		}
	}
	return peers, nil
}
