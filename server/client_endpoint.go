package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// The /v1/client endpoints agents (and the node simulator) use. They
// authenticate with the node's SecretID in headerNodeSecret.

const headerNodeSecret = "X-Berth-Node-Secret"

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// clientRoutes maps the agents' API.
func (s *Server) clientRoutes(mux *http.ServeMux) {
	s.handle(mux, "PUT /v1/client/node/register", routeWrite, s.clientNodeRegister)
	s.handle(mux, "PUT /v1/client/node/{id}/heartbeat", routeWrite, s.clientNodeHeartbeat)
	s.handle(mux, "GET /v1/client/node/{id}/allocations", routeRead, s.clientNodeAllocations)
	s.handle(mux, "GET /v1/client/node/{id}/peers", routeRead, s.clientNodePeers)
	s.handle(mux, "PUT /v1/client/allocations/update", routeWrite, s.clientAllocsUpdate)
}

func forbidden(format string, args ...any) error {
	return &codedError{code: http.StatusForbidden, msg: fmt.Sprintf(format, args...)}
}

func secretMatches(node *structs.Node, secret string) bool {
	return secret != "" && subtle.ConstantTimeCompare([]byte(node.SecretID), []byte(secret)) == 1
}

// authNode returns the node the request is about, if the request carries
// its secret.
func (s *Server) authNode(req *request, nodeID string) (*structs.Node, error) {
	node, err := s.State().NodeByID(nil, nodeID)
	if err != nil {
		return nil, err
	}
	if node == nil {
		return nil, notFound("node %s not found", nodeID)
	}
	if !secretMatches(node, req.Header.Get(headerNodeSecret)) {
		return nil, forbidden("missing or wrong %s for node %s", headerNodeSecret, nodeID)
	}
	return node, nil
}

// validateNode checks what an agent registers, reporting every problem.
func validateNode(n *structs.Node) error {
	var errs []error
	if !uuidPattern.MatchString(n.ID) {
		errs = append(errs, fmt.Errorf("node ID %q is not a UUID", n.ID))
	}
	if n.SecretID == "" {
		errs = append(errs, fmt.Errorf("node secret is missing (set SecretID or the %s header)", headerNodeSecret))
	}
	if strings.TrimSpace(n.Name) == "" {
		errs = append(errs, errors.New("node name is missing"))
	}
	if strings.TrimSpace(n.Datacenter) == "" {
		errs = append(errs, errors.New("node datacenter is missing"))
	}
	if r := n.NodeResources; r == nil {
		errs = append(errs, errors.New("node resources are missing"))
	} else {
		if r.Cpu.CpuShares <= 0 {
			errs = append(errs, fmt.Errorf("node CPU shares %d must be positive", r.Cpu.CpuShares))
		}
		if r.Memory.MemoryMB <= 0 {
			errs = append(errs, fmt.Errorf("node memory %d MB must be positive", r.Memory.MemoryMB))
		}
		if r.MinDynamicPort < 0 || r.MaxDynamicPort > 65535 || r.MinDynamicPort > r.MaxDynamicPort {
			errs = append(errs, fmt.Errorf("node dynamic port range %d-%d is invalid", r.MinDynamicPort, r.MaxDynamicPort))
		}
	}
	switch n.Status {
	case structs.NodeStatusInit, structs.NodeStatusReady:
	default:
		errs = append(errs, fmt.Errorf("node status %q must be %q or %q", n.Status, structs.NodeStatusInit, structs.NodeStatusReady))
	}
	return errors.Join(errs...)
}

func (s *Server) clientNodeRegister(req *request) (any, error) {
	var body structs.NodeRegisterRequest
	if err := decodeBody(req, &body); err != nil {
		return nil, err
	}
	node := body.Node
	if node == nil {
		return nil, badRequest("node is missing from the request body")
	}
	secret := req.Header.Get(headerNodeSecret)
	switch {
	case node.SecretID == "":
		node.SecretID = secret
	case secret != "" && secret != node.SecretID:
		return nil, badRequest("%s does not match the node's SecretID", headerNodeSecret)
	}
	if node.Status == "" {
		node.Status = structs.NodeStatusInit
	}
	if node.NodePool == "" {
		node.NodePool = structs.DefaultNodePool
	}
	if err := validateNode(node); err != nil {
		return nil, badRequest("invalid node: %v", err)
	}
	st := s.State()
	existing, err := st.NodeByID(nil, node.ID)
	if err != nil {
		return nil, err
	}
	if existing != nil && !secretMatches(existing, node.SecretID) {
		return nil, forbidden("node %s is registered with another secret", node.ID)
	}
	// the subnet choice travels in the entry; the reservation keeps
	// concurrent registrations from choosing the same one meanwhile
	release, err := s.assignNodeSubnets(st, node, existing)
	if err != nil {
		return nil, err
	}
	defer release()
	now := time.Now().UnixNano()
	node.StatusUpdatedAt = now
	// the class lets the scheduler share feasibility results between
	// like nodes; computed here so it travels in the entry
	node.ComputedClass = scheduler.ComputeNodeClass(node)
	cmd := &fsm.NodeRegisterCommand{Node: node}
	if node.Status == structs.NodeStatusReady && (existing == nil || existing.Status != structs.NodeStatusReady) {
		if existing != nil {
			node.ModifyIndex = existing.ModifyIndex
		}
		if cmd.Evals, err = nodeEvals(st, node, existing != nil, true, now); err != nil {
			return nil, err
		}
	}
	index, _, err := s.raftApply(fsm.NodeRegisterType, cmd)
	if err != nil {
		return nil, err
	}
	req.index = index
	return s.networkConfig(s.heartbeatResponse(node.ID, index), node), nil
}

func (s *Server) clientNodeHeartbeat(req *request) (any, error) {
	node, err := s.authNode(req, req.PathValue("id"))
	if err != nil {
		return nil, err
	}
	var index uint64
	if node.Status != structs.NodeStatusReady {
		// down or initializing: the node is back, or ready at last
		now := time.Now().UnixNano()
		evals, err := nodeEvals(s.State(), node, true, true, now)
		if err != nil {
			return nil, err
		}
		index, _, err = s.raftApply(fsm.NodeUpdateStatusType, &fsm.NodeUpdateStatusCommand{
			NodeID: node.ID, Status: structs.NodeStatusReady, UpdatedAt: now, Evals: evals,
		})
		if err != nil {
			return nil, err
		}
		s.logger.Info("node is ready", "node_id", node.ID, "was", node.Status, "evals", len(evals))
	}
	req.index = index
	return s.networkConfig(s.heartbeatResponse(node.ID, index), node), nil
}

func (s *Server) heartbeatResponse(nodeID string, index uint64) *structs.NodeHeartbeatResponse {
	return &structs.NodeHeartbeatResponse{
		HeartbeatTTL: s.resetHeartbeatTimer(nodeID),
		Index:        index,
		Servers:      s.serverHTTPAddrs(),
	}
}

// serverHTTPAddrs lists the HTTP addresses of the region's alive servers.
func (s *Server) serverHTTPAddrs() []string {
	addrs := []string{s.httpAddr}
	for _, m := range s.members.list() {
		if m.isServer() && m.Status == memberAlive && m.Tags[tagRegion] == s.config.Region {
			if a := m.Tags[tagHTTPAddr]; a != "" && !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	slices.Sort(addrs)
	return addrs
}

// clientNodeAllocations is the agent's blocking query for its allocations,
// with their jobs. Its index is the highest ModifyIndex of the node's
// allocations, so writes on other nodes do not wake it. With ?stubs=true
// it answers only each allocation's ID, indexes and statuses
// (clientAllocStub): an agent follows the list cheaply and fetches the
// full allocations only when one of them changed on the servers' side
// (AllocModifyIndex), not on every status update of its own.
func (s *Server) clientNodeAllocations(req *request) (any, error) {
	nodeID := req.PathValue("id")
	if _, err := s.authNode(req, nodeID); err != nil {
		return nil, err
	}
	stubs := req.URL.Query().Get("stubs") == "true"
	var out any
	err := s.blockingQuery(req, func(ws memdb.WatchSet, st *state.StateStore) (uint64, error) {
		allocs, err := st.AllocsByNode(ws, nodeID)
		var index uint64
		for _, a := range allocs {
			index = max(index, a.ModifyIndex)
		}
		if stubs {
			list := make([]clientAllocStub, 0, len(allocs))
			for _, a := range allocs {
				list = append(list, clientAllocStub{ID: a.ID, AllocModifyIndex: a.AllocModifyIndex,
					ModifyIndex: a.ModifyIndex, DesiredStatus: a.DesiredStatus, ClientStatus: a.ClientStatus})
			}
			out = list
		} else {
			out = nonNil(allocs)
		}
		return index, err
	})
	return out, err
}

// clientAllocStub is one allocation in the ?stubs=true answer (the JSON
// of api.ClientAllocStub).
type clientAllocStub struct {
	ID               string
	AllocModifyIndex uint64
	ModifyIndex      uint64
	DesiredStatus    string
	ClientStatus     string
}

// allocUpdateResponse answers PUT /v1/client/allocations/update.
type allocUpdateResponse struct {
	Index uint64
}

// clientAllocsUpdate records a batch of agents' allocation updates. Every
// allocation must be on a node whose SecretID is the request's secret (a
// simulator driving many nodes may give them all one secret). Unknown
// allocations are skipped. A newly failed allocation gets its job an
// alloc-failure evaluation in the same entry.
func (s *Server) clientAllocsUpdate(req *request) (any, error) {
	var body structs.AllocClientUpdateRequest
	if err := decodeBody(req, &body); err != nil {
		return nil, err
	}
	if len(body.Allocs) == 0 {
		return nil, badRequest("no allocations to update")
	}
	secret := req.Header.Get(headerNodeSecret)
	if secret == "" {
		return nil, forbidden("missing %s", headerNodeSecret)
	}
	st := s.State()
	now := time.Now().UnixNano()
	nodeOK := make(map[string]bool)
	type jobKey struct{ ns, id string }
	failedJobs := make(map[jobKey]*structs.Job)
	var failedOrder []jobKey
	updates := make([]*structs.Allocation, 0, len(body.Allocs))
	for _, a := range body.Allocs {
		if a == nil || a.ID == "" {
			return nil, badRequest("allocation update without ID")
		}
		stored, err := st.AllocByID(nil, a.ID)
		if err != nil {
			return nil, err
		}
		if stored == nil {
			continue
		}
		ok, seen := nodeOK[stored.NodeID]
		if !seen {
			node, err := st.NodeByID(nil, stored.NodeID)
			if err != nil {
				return nil, err
			}
			ok = node != nil && secretMatches(node, secret)
			nodeOK[stored.NodeID] = ok
		}
		if !ok {
			return nil, forbidden("allocation %s is on node %s, which has another secret", a.ID, stored.NodeID)
		}
		modified := a.ModifyTime
		if modified == 0 {
			modified = now
		}
		updates = append(updates, &structs.Allocation{
			ID: a.ID, ClientStatus: a.ClientStatus, ClientDescription: a.ClientDescription,
			TaskStates: a.TaskStates, ModifyTime: modified,
		})
		if a.ClientStatus == structs.AllocClientStatusFailed && stored.ClientStatus != structs.AllocClientStatusFailed &&
			stored.DesiredStatus == structs.AllocDesiredStatusRun && stored.FollowupEvalID == "" {
			k := jobKey{stored.Namespace, stored.JobID}
			if _, dup := failedJobs[k]; !dup {
				job, err := st.JobByID(nil, stored.Namespace, stored.JobID)
				if err != nil {
					return nil, err
				}
				if job != nil && !job.Stop {
					failedJobs[k] = job
					failedOrder = append(failedOrder, k)
				}
			}
		}
	}
	if len(updates) == 0 {
		req.index = st.Index(nil, state.TableAllocs)
		return &allocUpdateResponse{Index: req.index}, nil
	}
	cmd := &fsm.AllocClientUpdateCommand{Allocs: updates, UpdatedAt: now}
	for _, k := range failedOrder {
		cmd.Evals = append(cmd.Evals, s.newEval(failedJobs[k], structs.EvalTriggerRetryFailedAlloc, failedJobs[k].Priority, now))
	}
	index, _, err := s.raftApply(fsm.AllocClientUpdateType, cmd)
	if err != nil {
		return nil, err
	}
	req.index = index
	return &allocUpdateResponse{Index: index}, nil
}
