package command

import (
	"fmt"
	"net"
	"sort"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/structs"
)

// Gossip tags read from server members (Nomad's names first).
var (
	tagRegion   = []string{"region"}
	tagDC       = []string{"dc", "datacenter"}
	tagBuild    = []string{"build", "version"}
	tagRaftVsn  = []string{"raft_vsn"}
	tagRaftAddr = []string{"raft_addr"}
	tagPort     = []string{"port", "raft_port"}
)

func tag(m *structs.AgentMember, names []string) string {
	for _, n := range names {
		if v := m.Tags[n]; v != "" {
			return v
		}
	}
	return ""
}

// memberRaftAddr is the member's Raft address: its raft_addr tag, or its
// gossip address with the port tag (as Nomad derives it).
func memberRaftAddr(m *structs.AgentMember) string {
	if a := tag(m, tagRaftAddr); a != "" {
		return a
	}
	if p := tag(m, tagPort); p != "" {
		return net.JoinHostPort(m.Addr, p)
	}
	return ""
}

func newServerMembersCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the servers in the gossip pool",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			mem, err := c.Agent().Members()
			if err != nil {
				return fmt.Errorf("list members: %w", err)
			}
			members := mem.Members
			sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
			if g.json {
				return writeJSON(cmd.OutOrStdout(), mem)
			}
			// A missing leader is not an error here: members is how an
			// operator finds out why there is none.
			leader, _ := c.Status().Leader()
			return writeTable(cmd.OutOrStdout(), serverMembersHeader, serverMembersRows(members, leader))
		},
	}
}

var serverMembersHeader = []string{"Name", "Address", "Port", "Status", "Leader", "Raft Version", "Build", "Datacenter", "Region"}

func serverMembersRows(members []*structs.AgentMember, leader string) [][]string {
	rows := make([][]string, 0, len(members))
	for _, m := range members {
		isLeader := leader != "" && memberRaftAddr(m) == leader
		rows = append(rows, []string{
			m.Name,
			m.Addr,
			fmt.Sprint(m.Port),
			m.Status,
			fmt.Sprint(isLeader),
			orNone(tag(m, tagRaftVsn)),
			orNone(tag(m, tagBuild)),
			orNone(tag(m, tagDC)),
			orNone(tag(m, tagRegion)),
		})
	}
	return rows
}
