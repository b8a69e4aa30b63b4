package server

import (
	"errors"
	"net/http"
	"strconv"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

// schedulerRoutes registers the scheduling endpoints outside /v1/job/
// (job plan and evaluate are dispatched by jobWrite).
func (s *Server) schedulerRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/operator/scheduler/configuration", routeRead, s.schedulerConfigGet)
	s.handle(mux, "PUT /v1/operator/scheduler/configuration", routeWrite, s.schedulerConfigSet)
	s.handle(mux, "POST /v1/operator/scheduler/configuration", routeWrite, s.schedulerConfigSet)
}

// schedulerConfigResponse is Nomad's SchedulerConfigurationResponse.
type schedulerConfigResponse struct {
	SchedulerConfig *structs.SchedulerConfiguration
	structs.QueryMeta
}

// schedulerSetConfigResponse is Nomad's SchedulerSetConfigurationResponse.
type schedulerSetConfigResponse struct {
	Updated bool
	Index   uint64
}

func (s *Server) schedulerConfigGet(req *request) (any, error) {
	out := &schedulerConfigResponse{}
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		cfg, err := st.SchedulerConfig(ws)
		if err != nil {
			return 0, err
		}
		out.SchedulerConfig = cfg
		return queryIndex(ws, st, state.TableSchedulerConfig), nil
	})
	if err != nil {
		return nil, err
	}
	out.Index, out.KnownLeader = max(req.index, 1), true
	return out, nil
}

func (s *Server) schedulerConfigSet(req *request) (any, error) {
	var cfg structs.SchedulerConfiguration
	if err := decodeBody(req, &cfg); err != nil {
		return nil, err
	}
	switch cfg.SchedulerAlgorithm {
	case "", structs.SchedulerAlgorithmBinpack, structs.SchedulerAlgorithmSpread:
	default:
		return nil, badRequest("invalid scheduler algorithm %q: must be %q or %q",
			cfg.SchedulerAlgorithm, structs.SchedulerAlgorithmBinpack, structs.SchedulerAlgorithmSpread)
	}
	cmd := &fsm.SchedulerConfigCommand{Config: &cfg}
	if v := req.URL.Query().Get("cas"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, badRequest("invalid cas index %q: %v", v, err)
		}
		cmd.CAS, cmd.Index = true, idx
	}
	index, _, err := s.raftApply(fsm.SchedulerConfigType, cmd)
	if cmd.CAS && errors.Is(err, state.ErrConflict) {
		// as Nomad: a lost check-and-set is not an error, just not updated
		req.index = index
		return &schedulerSetConfigResponse{Updated: false, Index: index}, nil
	}
	if err != nil {
		return nil, err
	}
	req.index = index
	return &schedulerSetConfigResponse{Updated: true, Index: index}, nil
}
