package server

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func (s *Server) evalList(req *request) (any, error) {
	var out []*structs.Evaluation
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		evals, err := st.Evals(ws, req.namespace, req.prefix)
		out = nonNil(evals)
		return queryIndex(ws, st, state.TableEvals), err
	})
	return out, err
}

func (s *Server) evalInfo(req *request) (any, error) {
	var out *structs.Evaluation
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		var err error
		out, err = st.EvalByID(ws, req.PathValue("id"))
		return queryIndex(ws, st, state.TableEvals), err
	})
	if err == nil && out == nil {
		return nil, notFound("eval not found")
	}
	return out, err
}

func (s *Server) evalAllocations(req *request) (any, error) {
	var out []*structs.AllocListStub
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		allocs, err := st.AllocsByEval(ws, req.PathValue("id"))
		out = make([]*structs.AllocListStub, 0, len(allocs))
		for _, a := range allocs {
			out = append(out, a.Stub())
		}
		return queryIndex(ws, st, state.TableAllocs), err
	})
	return out, err
}
