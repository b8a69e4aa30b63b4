package server

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func (s *Server) namespaceList(req *request) (any, error) {
	var out []*structs.Namespace
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		nss, err := st.Namespaces(ws)
		out = nonNil(nss)
		return queryIndex(ws, st, state.TableNamespaces), err
	})
	return out, err
}

func (s *Server) namespaceInfo(req *request) (any, error) {
	var out *structs.Namespace
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		var err error
		out, err = st.NamespaceByName(ws, req.PathValue("name"))
		return queryIndex(ws, st, state.TableNamespaces), err
	})
	if err == nil && out == nil {
		return nil, notFound("namespace not found")
	}
	return out, err
}

func (s *Server) namespaceUpsert(req *request) (any, error) {
	var ns structs.Namespace
	if err := decodeBody(req, &ns); err != nil {
		return nil, err
	}
	if name := req.PathValue("name"); name != "" {
		if ns.Name == "" {
			ns.Name = name
		} else if ns.Name != name {
			return nil, badRequest("namespace name %q does not match the request path %q", ns.Name, name)
		}
	}
	if err := ns.Validate(); err != nil {
		return nil, badRequest("invalid namespace: %v", err)
	}
	index, _, err := s.raftApply(fsm.NamespaceUpsertType, &fsm.NamespaceUpsertCommand{Namespaces: []*structs.Namespace{&ns}})
	req.index = index
	return nil, err
}

func (s *Server) namespaceDelete(req *request) (any, error) {
	name := req.PathValue("name")
	if ns, err := s.State().NamespaceByName(nil, name); err != nil {
		return nil, err
	} else if ns == nil {
		return nil, notFound("namespace not found")
	}
	index, _, err := s.raftApply(fsm.NamespaceDeleteType, &fsm.NamespaceDeleteCommand{Names: []string{name}})
	req.index = index
	return nil, err
}
