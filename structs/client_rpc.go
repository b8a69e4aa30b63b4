package structs

import "time"

// Requests and responses of the /v1/client/* endpoints that agents (and
// the node simulator) use to register nodes, heartbeat, watch their
// allocations and report allocation status. They authenticate with the
// node's SecretID in the X-Berth-Node-Secret header.

// NodeRegisterRequest registers or re-registers a node.
type NodeRegisterRequest struct {
	Node *Node
}

// NodeHeartbeatResponse answers a registration or heartbeat: the agent must
// heartbeat again within HeartbeatTTL or its node is marked down.
type NodeHeartbeatResponse struct {
	HeartbeatTTL time.Duration
	// Index is the Raft index of the write, if any.
	Index uint64
	// Servers lists the HTTP addresses of the servers, for failover.
	Servers []string
	// NetworkSubnet(6) is the node's allocation subnet and ClusterCIDR(6)
	// the whole allocation address space it is part of (empty: the
	// servers run no IPAM, or no IPv6). The agent hands them to its
	// network plugin (network.Config).
	NetworkSubnet  string `json:",omitempty"`
	NetworkSubnet6 string `json:",omitempty"`
	ClusterCIDR    string `json:",omitempty"`
	ClusterCIDR6   string `json:",omitempty"`
}

// AllocClientUpdateRequest carries agents' status updates, batched.
// Only ClientStatus, ClientDescription, TaskStates and ModifyTime of each
// allocation are taken.
type AllocClientUpdateRequest struct {
	Allocs []*Allocation
}

// JobPlanRequest is the body of PUT /v1/job/:id/plan.
type JobPlanRequest struct {
	Job            *Job
	Diff           bool
	PolicyOverride bool
}

// JobPlanResponse answers a plan: what the scheduler would do.
type JobPlanResponse struct {
	Annotations        *PlanAnnotations
	FailedTGAllocs     map[string]*AllocMetric
	JobModifyIndex     uint64
	CreatedEvals       []*Evaluation
	Diff               any
	NextPeriodicLaunch time.Time
	Warnings           string
	Index              uint64
}

// JobEvaluateRequest is the body of PUT /v1/job/:id/evaluate.
type JobEvaluateRequest struct {
	JobID       string
	EvalOptions EvalOptions
}

// EvalOptions tune a forced evaluation.
type EvalOptions struct {
	ForceReschedule bool
}
