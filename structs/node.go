package structs

import "time"

// Node statuses.
const (
	NodeStatusInit         = "initializing"
	NodeStatusReady        = "ready"
	NodeStatusDown         = "down"
	NodeStatusDisconnected = "disconnected"
)

// Scheduling eligibility.
const (
	NodeSchedulingEligible   = "eligible"
	NodeSchedulingIneligible = "ineligible"
)

// Node is a worker machine registered by an agent.
type Node struct {
	ID                    string
	SecretID              string
	Datacenter            string
	Name                  string
	HTTPAddr              string
	TLSEnabled            bool
	Attributes            map[string]string
	NodeResources         *NodeResources
	ReservedResources     *NodeReservedResources
	Links                 map[string]string
	Meta                  map[string]string
	NodeClass             string
	NodePool              string
	ComputedClass         string
	Drain                 bool
	DrainStrategy         *DrainStrategy
	SchedulingEligibility string
	Status                string
	StatusDescription     string
	StatusUpdatedAt       int64
	Events                []*NodeEvent
	Drivers               map[string]*DriverInfo
	// NetworkSubnet and NetworkSubnet6 are the node's share of the
	// cluster's allocation CIDRs, handed out by the servers at
	// registration (berth extension, see node_network.go).
	NetworkSubnet  string `json:",omitempty"`
	NetworkSubnet6 string `json:",omitempty"`
	CreateIndex    uint64
	ModifyIndex    uint64
}

// NodeResources is the capacity a node offers.
type NodeResources struct {
	Cpu            NodeCpuResources
	Memory         NodeMemoryResources
	Disk           NodeDiskResources
	MinDynamicPort int
	MaxDynamicPort int
}

// NodeCpuResources is a node's CPU capacity.
type NodeCpuResources struct {
	CpuShares          int64
	TotalCpuCores      uint16
	ReservableCpuCores []uint16
}

// NodeMemoryResources is a node's memory in MiB.
type NodeMemoryResources struct {
	MemoryMB int64
}

// NodeDiskResources is a node's allocatable disk in MiB.
type NodeDiskResources struct {
	DiskMB int64
}

// NodeReservedResources is capacity kept back from the scheduler.
type NodeReservedResources struct {
	Cpu      NodeReservedCpuResources
	Memory   NodeReservedMemoryResources
	Disk     NodeReservedDiskResources
	Networks NodeReservedNetworkResources
}

// NodeReservedCpuResources is reserved CPU.
type NodeReservedCpuResources struct {
	CpuShares     uint64
	ReservedCores []uint16
}

// NodeReservedMemoryResources is reserved memory.
type NodeReservedMemoryResources struct {
	MemoryMB uint64
}

// NodeReservedDiskResources is reserved disk.
type NodeReservedDiskResources struct {
	DiskMB uint64
}

// NodeReservedNetworkResources lists reserved host ports ("22,80,8000-8100").
type NodeReservedNetworkResources struct {
	ReservedHostPorts string
}

// DrainStrategy is an active drain.
type DrainStrategy struct {
	DrainSpec
	ForceDeadline time.Time
	StartedAt     time.Time
}

// DrainSpec is what the operator asked for.
type DrainSpec struct {
	Deadline         time.Duration
	IgnoreSystemJobs bool
}

// NodeEvent is a notable change in a node's life.
type NodeEvent struct {
	Message     string
	Subsystem   string
	Details     map[string]string
	Timestamp   time.Time
	CreateIndex uint64
}

// DriverInfo is a task driver's fingerprint on a node.
type DriverInfo struct {
	Attributes        map[string]string
	Detected          bool
	Healthy           bool
	HealthDescription string
	UpdateTime        time.Time
}

// Sanitize returns a copy safe to show through the API: without the
// secret the agent authenticates with.
func (n *Node) Sanitize() *Node {
	if n == nil || n.SecretID == "" {
		return n
	}
	c := *n
	c.SecretID = ""
	return &c
}

// NodeListStub is the short form returned by node lists.
type NodeListStub struct {
	Address               string
	ID                    string
	Attributes            map[string]string `json:",omitempty"`
	Datacenter            string
	Name                  string
	NodeClass             string
	NodePool              string
	Version               string
	Drain                 bool
	SchedulingEligibility string
	Status                string
	StatusDescription     string
	Drivers               map[string]*DriverInfo
	NodeResources         *NodeResources         `json:",omitempty"`
	ReservedResources     *NodeReservedResources `json:",omitempty"`
	// NetworkSubnet(6) are berth extensions (see Node).
	NetworkSubnet  string `json:",omitempty"`
	NetworkSubnet6 string `json:",omitempty"`
	CreateIndex    uint64
	ModifyIndex    uint64
}

// Stub returns the list form of the node.
func (n *Node) Stub() *NodeListStub {
	addr := n.Attributes["unique.network.ip-address"]
	return &NodeListStub{
		Address:               addr,
		ID:                    n.ID,
		Datacenter:            n.Datacenter,
		Name:                  n.Name,
		NodeClass:             n.NodeClass,
		NodePool:              n.NodePool,
		Version:               n.Attributes["berth.version"],
		Drain:                 n.Drain,
		SchedulingEligibility: n.SchedulingEligibility,
		Status:                n.Status,
		StatusDescription:     n.StatusDescription,
		Drivers:               n.Drivers,
		NetworkSubnet:         n.NetworkSubnet,
		NetworkSubnet6:        n.NetworkSubnet6,
		CreateIndex:           n.CreateIndex,
		ModifyIndex:           n.ModifyIndex,
	}
}
