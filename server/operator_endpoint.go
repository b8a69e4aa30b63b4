package server

import (
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/structs"
)

func (s *Server) operatorRaftConfiguration(req *request) (any, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	leaderAddr, leaderID := s.Leader()
	out := &structs.RaftConfiguration{Index: f.Index(), Servers: []*structs.RaftServer{}}
	for _, srv := range f.Configuration().Servers {
		name := "(unknown)"
		if m := s.members.serverByID(string(srv.ID)); m != nil {
			name = m.Name
		}
		out.Servers = append(out.Servers, &structs.RaftServer{
			ID:           string(srv.ID),
			Node:         name,
			Address:      string(srv.Address),
			Leader:       srv.ID == leaderID && srv.Address == leaderAddr,
			Voter:        srv.Suffrage == raft.Voter,
			RaftProtocol: "3",
		})
	}
	req.index = f.Index()
	return out, nil
}

// findPeer resolves ?id= or ?address= against the Raft configuration.
func (s *Server) findPeer(req *request) (raft.Server, error) {
	q := req.URL.Query()
	id, addr := q.Get("id"), q.Get("address")
	if (id == "") == (addr == "") {
		return raft.Server{}, badRequest("give exactly one of id or address")
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Server{}, err
	}
	for _, srv := range f.Configuration().Servers {
		if (id != "" && string(srv.ID) == id) || (addr != "" && string(srv.Address) == addr) {
			return srv, nil
		}
	}
	if id != "" {
		return raft.Server{}, notFound("no raft peer with id %q", id)
	}
	return raft.Server{}, notFound("no raft peer with address %q", addr)
}

func (s *Server) operatorRaftRemovePeer(req *request) (any, error) {
	peer, err := s.findPeer(req)
	if err != nil {
		return nil, err
	}
	s.members.markRemoved(string(peer.ID))
	f := s.raft.RemoveServer(peer.ID, 0, 0)
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("remove raft peer %s: %w", peer.ID, err)
	}
	s.logger.Info("removed raft peer", "peer_id", peer.ID, "address", peer.Address)
	req.index = f.Index()
	return nil, nil
}

func (s *Server) operatorRaftTransferLeadership(req *request) (any, error) {
	var f raft.Future
	if q := req.URL.Query(); q.Get("id") == "" && q.Get("address") == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		peer, err := s.findPeer(req)
		if err != nil {
			return nil, err
		}
		if string(peer.ID) == s.nodeID {
			return nil, badRequest("%s already leads", peer.ID)
		}
		f = s.raft.LeadershipTransferToServer(peer.ID, peer.Address)
	}
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("transfer leadership: %w", err)
	}
	return nil, nil
}
