package server

import (
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/structs"
)

func (m *member) toAPI() *structs.AgentMember {
	return &structs.AgentMember{
		Name: m.Name, Addr: m.Addr.String(), Port: m.Port, Tags: m.Tags, Status: m.Status,
		ProtocolMin: m.PMin, ProtocolMax: m.PMax, ProtocolCur: m.PCur,
		DelegateMin: m.DMin, DelegateMax: m.DMax, DelegateCur: m.DCur,
	}
}

func (s *Server) agentSelf(req *request) (any, error) {
	self := structs.AgentMember{Name: s.name, Tags: s.gossipTags(), Status: memberAlive}
	if s.gossip != nil {
		n := s.gossip.LocalNode()
		self.Addr, self.Port = n.Addr.String(), n.Port
	}
	addr, id := s.Leader()
	return &structs.AgentSelf{
		Config: map[string]any{
			"Region":     s.config.Region,
			"Datacenter": s.config.Datacenter,
			"NodeName":   s.name,
			"DataDir":    s.config.DataDir,
			"Version":    map[string]any{"Version": s.config.Version},
			"Server": map[string]any{
				"Enabled":         true,
				"BootstrapExpect": s.config.BootstrapExpect,
			},
			"Addresses": map[string]string{"HTTP": s.httpAddr, "RPC": s.raftAddr, "Serf": s.gossipAddr},
		},
		Member: self,
		Stats: map[string]map[string]string{
			"raft": s.raft.Stats(),
			"nomad": {
				"server":      "true",
				"leader":      strconv.FormatBool(s.IsLeader()),
				"leader_addr": string(addr),
				"leader_id":   string(id),
				"fsm_version": strconv.Itoa(fsm.Version),
			},
		},
	}, nil
}

func (s *Server) agentMembers(req *request) (any, error) {
	out := &structs.ServerMembers{
		ServerName:   s.name,
		ServerRegion: s.config.Region,
		ServerDC:     s.config.Datacenter,
		Members:      []*structs.AgentMember{},
	}
	for _, m := range s.members.list() {
		out.Members = append(out.Members, m.toAPI())
	}
	return out, nil
}

func (s *Server) agentHealth(req *request) (any, error) {
	h := &structs.AgentHealth{Ok: true, Message: "ok"}
	if addr, _ := s.Leader(); addr == "" {
		h = &structs.AgentHealth{Ok: false, Message: ErrNoLeader.Error()}
	}
	if err := s.fsm.Fatal(); err != nil {
		h = &structs.AgentHealth{Ok: false, Message: err.Error()}
	}
	if !h.Ok {
		req.status = http.StatusInternalServerError
	}
	return &structs.AgentHealthResponse{Server: h}, nil
}

func (s *Server) agentJoin(req *request) (any, error) {
	addrs := req.URL.Query()["address"]
	if len(addrs) == 0 {
		return nil, badRequest("missing address to join")
	}
	n, err := s.Join(addrs)
	out := map[string]any{"num_joined": n, "error": ""}
	if err != nil {
		out["error"] = err.Error()
	}
	return out, nil
}
