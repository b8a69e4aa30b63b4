package api

import "net/http"

// HostStats is the resource usage of the host an agent runs on, as Nomad's
// GET /v1/client/stats reports it (field names and units identical, so
// that Nomad's own client decodes it).
type HostStats struct {
	Memory    *HostMemoryStats
	CPU       []*HostCPUStats
	DiskStats []*HostDiskStats
	// AllocDirStats is the filesystem holding the agent's data directory,
	// where allocation directories live.
	AllocDirStats *HostDiskStats
	// DeviceStats is Nomad's device-plugin statistics; berth has no
	// device plugins, so it is always empty.
	DeviceStats []any
	// Uptime is seconds since the host booted.
	Uptime uint64
	// Timestamp is when the sample was taken, in Unix nanoseconds.
	Timestamp int64
	// CPUTicksConsumed is the MHz the host's CPUs spent busy over the last
	// sample interval (the unit node CPU resources are expressed in).
	CPUTicksConsumed float64
}

// HostMemoryStats is the host's memory, in bytes.
type HostMemoryStats struct {
	Total     uint64
	Available uint64
	Used      uint64
	Free      uint64
}

// HostCPUStats is one CPU's time split, in percent of the last sample
// interval.
type HostCPUStats struct {
	CPU    string
	User   float64
	System float64
	Idle   float64
}

// HostDiskStats is one filesystem's capacity: sizes in bytes, usage in
// percent.
type HostDiskStats struct {
	Device            string
	Mountpoint        string
	Size              uint64
	Used              uint64
	Available         uint64
	UsedPercent       float64
	InodesUsedPercent float64
}

// Stats returns the resource usage of a node's host, as its agent measures
// it (GET /v1/client/stats?node_id=ID, proxied by the servers to the
// node's agent).
func (n *Nodes) Stats(nodeID string, q *QueryOptions) (*HostStats, error) {
	r := n.c.newRequest(http.MethodGet, "/v1/client/stats")
	r.setQueryOptions(q)
	r.params.Set("node_id", nodeID)
	var out HostStats
	if _, _, err := n.c.call(r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
