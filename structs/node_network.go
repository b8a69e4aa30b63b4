package structs

// Allocation networks (berth extension to Nomad's node shape). The servers
// split the cluster's allocation CIDR (e.g. 10.88.0.0/16) into one subnet
// per node (10.88.N.0/24), recorded in Node.NetworkSubnet through Raft, so
// allocation addresses are unique across the cluster and a node keeps its
// subnet across agent restarts. Agents learn their subnet from the
// registration answer and route to the other nodes' subnets from the
// peers list.

// NodeAddressAttribute is the node attribute holding the address other
// nodes reach it on.
const NodeAddressAttribute = "unique.network.ip-address"

// NodeNetworkPluginAttribute names the network plugin a node runs ("nft").
// Only nodes that set it (or ask for a subnet, or hold one) are given a
// subnet: nodes without allocation networking, like simulated fleets of
// thousands, must not use up the cluster CIDR.
const NodeNetworkPluginAttribute = "berth.network.plugin"

// WantsNetworkSubnet reports whether the servers should give n a subnet.
func (n *Node) WantsNetworkSubnet() bool {
	return n.Attributes[NodeNetworkPluginAttribute] != "" || n.NetworkSubnet != "" || n.NetworkSubnet6 != ""
}

// NodePeer is another node's allocation subnet and the address to route
// it through: an element of GET /v1/client/node/:id/peers.
type NodePeer struct {
	NodeID string
	Name   string
	// Address is the node's unique.network.ip-address attribute, or the
	// host of its HTTPAddr when it has none.
	Address string
	Subnet  string
	Subnet6 string `json:",omitempty"`
	Status  string
}
