package lab

import (
	"context"
	"time"
)

// NodeStatus is what Status reports of one node.
type NodeStatus struct {
	Node    *Node
	Running bool
	// Leader is the leader a server names ("" for agents, unknown or
	// unreachable); Err is why it could not be asked.
	Leader string
	Err    error
}

// Status reports every node's process and, for servers, whom they see as
// leader (each asked with a short timeout).
func (l *Lab) Status(ctx context.Context) []NodeStatus {
	out := make([]NodeStatus, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		st := NodeStatus{Node: n, Running: l.Running(n)}
		if n.Role == RoleServer && st.Running {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			st.Leader, st.Err = Leader(cctx, n.HTTPAddr())
			cancel()
		}
		out = append(out, st)
	}
	return out
}
