package api

import "github.com/berth-dev/berth/structs"

// Agent is the /v1/agent endpoint group: it talks about the agent that
// answers, not the cluster.
type Agent struct{ c *Client }

// Agent returns the agent endpoints.
func (c *Client) Agent() *Agent { return &Agent{c: c} }

// Self returns the agent's configuration, member record and stats.
func (a *Agent) Self() (*structs.AgentSelf, error) {
	var out structs.AgentSelf
	if _, err := a.c.query("/v1/agent/self", &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Members returns the server gossip pool as seen by the agent.
func (a *Agent) Members() (*structs.ServerMembers, error) {
	var out structs.ServerMembers
	if _, err := a.c.query("/v1/agent/members", &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health returns the agent's health. An unhealthy agent answers with a
// non-2xx status, which is returned as a *StatusError.
func (a *Agent) Health() (*structs.AgentHealthResponse, error) {
	var out structs.AgentHealthResponse
	if _, err := a.c.query("/v1/agent/health", &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}
