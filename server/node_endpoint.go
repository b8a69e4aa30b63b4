package server

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func (s *Server) nodeList(req *request) (any, error) {
	var out []*structs.NodeListStub
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		nodes, err := st.Nodes(ws, req.prefix)
		out = make([]*structs.NodeListStub, 0, len(nodes))
		for _, n := range nodes {
			out = append(out, n.Stub())
		}
		return queryIndex(ws, st, state.TableNodes), err
	})
	return out, err
}

func (s *Server) nodeInfo(req *request) (any, error) {
	var out *structs.Node
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		var err error
		out, err = st.NodeByID(ws, req.PathValue("id"))
		return queryIndex(ws, st, state.TableNodes), err
	})
	if err == nil && out == nil {
		return nil, notFound("node not found")
	}
	return out.Sanitize(), err
}

func (s *Server) nodeAllocations(req *request) (any, error) {
	var out []*structs.Allocation
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		allocs, err := st.AllocsByNode(ws, req.PathValue("id"))
		out = nonNil(allocs)
		return queryIndex(ws, st, state.TableAllocs), err
	})
	return out, err
}
