package command

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newOperatorCommand(g *globals) *cobra.Command {
	op := groupCommand("operator", "Cluster operations for operators")
	raft := groupCommand("raft", "Inspect and change the Raft peer set")
	raft.AddCommand(
		newRaftListPeersCommand(g),
		newRaftPeerCommand(g, "remove-peer", "Remove a server from the Raft peer set",
			`Remove a server from the Raft peer set, e.g. one whose data dir was lost
and that will not come back. Give exactly one of -peer-id or -peer-address.`,
			"Removed peer", func(o *api.Operator, byID bool, v string, w *api.WriteOptions) error {
				if byID {
					return o.RaftRemovePeerByID(v, w)
				}
				return o.RaftRemovePeerByAddress(v, w)
			}),
		newRaftPeerCommand(g, "transfer-leadership", "Hand Raft leadership to another server",
			`Ask the leader to hand leadership to the given server. Give exactly one of
-peer-id or -peer-address.`,
			"Transferred leadership to peer", func(o *api.Operator, byID bool, v string, w *api.WriteOptions) error {
				if byID {
					return o.RaftTransferLeadershipByID(v, w)
				}
				return o.RaftTransferLeadershipByAddress(v, w)
			}),
	)
	op.AddCommand(raft)
	op.AddCommand(newOperatorSchedulerCommand(g))
	return op
}

func newRaftListPeersCommand(g *globals) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "list-peers",
		Short: "List the servers in the Raft configuration",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := (&api.QueryOptions{AllowStale: stale}).WithContext(cmd.Context())
			conf, err := c.Operator().RaftGetConfiguration(q)
			if err != nil {
				return fmt.Errorf("get raft configuration: %w", err)
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), conf)
			}
			return writeTable(cmd.OutOrStdout(), raftPeersHeader, raftPeersRows(conf))
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "let any server answer, even without a leader")
	return cmd
}

var raftPeersHeader = []string{"Node", "ID", "Address", "State", "Voter", "RaftProtocol"}

func raftPeersRows(conf *structs.RaftConfiguration) [][]string {
	rows := make([][]string, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		state := "follower"
		if s.Leader {
			state = "leader"
		}
		rows = append(rows, []string{s.Node, s.ID, s.Address, state, fmt.Sprint(s.Voter), orNone(s.RaftProtocol)})
	}
	return rows
}

type raftPeerOp func(o *api.Operator, byID bool, value string, w *api.WriteOptions) error

func newRaftPeerCommand(g *globals, use, short, long, done string, op raftPeerOp) *cobra.Command {
	var peerID, peerAddr string
	cmd := &cobra.Command{
		Use:   use + " (-peer-id ID | -peer-address IP:PORT)",
		Short: short,
		Long:  long,
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (peerID == "") == (peerAddr == "") {
				return usageErrorf("give exactly one of -peer-id or -peer-address")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			w := (&api.WriteOptions{}).WithContext(cmd.Context())
			byID, value, what, key := peerID != "", peerID, "id", "PeerID"
			if !byID {
				value, what, key = peerAddr, "address", "PeerAddress"
			}
			if err := op(c.Operator(), byID, value, w); err != nil {
				return fmt.Errorf("%s %s %q: %w", use, what, value, err)
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), map[string]string{key: value})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s with %s %q\n", done, what, value)
			return nil
		},
	}
	cmd.Flags().StringVar(&peerID, "peer-id", "", "Raft server ID of the peer")
	cmd.Flags().StringVar(&peerAddr, "peer-address", "", "Raft address (ip:port) of the peer")
	return cmd
}
