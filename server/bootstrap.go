package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// bootstrapLoop writes the first Raft configuration once bootstrap-expect
// servers see each other. It does nothing on a server that has Raft state
// already (a restart) or that a running cluster has taken in.
func (s *Server) bootstrapLoop() {
	expect := s.config.BootstrapExpect
	if expect == 0 {
		return
	}
	if s.hasRaftState() {
		s.logger.Debug("raft state exists, not bootstrapping")
		return
	}
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	warned := false
	for {
		if s.hasRaftState() {
			return
		}
		servers, err := s.bootstrapCandidates(expect)
		if err != nil && !warned {
			s.logger.Warn("bootstrap", "error", err)
			warned = true
		}
		if len(servers) >= expect {
			if s.peersHaveCluster(servers) {
				s.logger.Info("a peer is already part of a cluster; waiting to be added")
				return
			}
			cfg := raft.Configuration{}
			for _, m := range servers {
				cfg.Servers = append(cfg.Servers, raft.Server{
					Suffrage: raft.Voter,
					ID:       raft.ServerID(m.Tags[tagID]),
					Address:  raft.ServerAddress(m.Tags[tagRaftAddr]),
				})
			}
			err := s.raft.BootstrapCluster(cfg).Error()
			switch {
			case err == nil:
				s.logger.Info("bootstrapped raft cluster", "servers", len(cfg.Servers))
			case errors.Is(err, raft.ErrCantBootstrap):
				s.logger.Debug("raft already has state, not bootstrapping")
			default:
				s.logger.Error("bootstrap raft cluster", "error", err)
			}
			return
		}
		select {
		case <-s.shutdownCh:
			return
		case <-ticker.C:
		}
	}
}

// bootstrapCandidates lists alive servers of this region, sorted by ID so
// every server proposes the same configuration.
func (s *Server) bootstrapCandidates(expect int) ([]*member, error) {
	var out []*member
	var err error
	for _, m := range s.members.list() {
		if !m.isServer() || m.Status != memberAlive || m.Tags[tagRegion] != s.config.Region {
			continue
		}
		if e, _ := strconv.Atoi(m.Tags[tagExpect]); e != 0 && e != expect {
			err = fmt.Errorf("server %s has bootstrap-expect %d, this server %d", m.Name, e, expect)
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tags[tagID] < out[j].Tags[tagID] })
	return out, err
}

// peersHaveCluster asks each candidate whether it already has Raft peers,
// so a late server never bootstraps a second cluster.
func (s *Server) peersHaveCluster(servers []*member) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, m := range servers {
		if m.Tags[tagID] == s.nodeID {
			continue
		}
		resp, err := client.Get("http://" + m.Tags[tagHTTPAddr] + "/v1/status/peers?stale")
		if err != nil {
			continue
		}
		var peers []string
		err = json.NewDecoder(resp.Body).Decode(&peers)
		resp.Body.Close()
		if err == nil && len(peers) > 0 {
			return true
		}
	}
	return false
}
