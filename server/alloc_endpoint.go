package server

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func (s *Server) allocList(req *request) (any, error) {
	var out []*structs.AllocListStub
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		allocs, err := st.Allocs(ws, req.namespace, req.prefix)
		out = make([]*structs.AllocListStub, 0, len(allocs))
		for _, a := range allocs {
			out = append(out, a.Stub())
		}
		return queryIndex(ws, st, state.TableAllocs), err
	})
	return out, err
}

func (s *Server) allocInfo(req *request) (any, error) {
	var out *structs.Allocation
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		var err error
		out, err = st.AllocByID(ws, req.PathValue("id"))
		return queryIndex(ws, st, state.TableAllocs), err
	})
	if err == nil && out == nil {
		return nil, notFound("alloc not found")
	}
	return out, err
}
