package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// Node allocation subnets (structs.Node.NetworkSubnet/NetworkSubnet6).
// The leader picks them; the FSM only refuses an entry that would give
// one subnet to two nodes, which can happen when an old leader's entry
// commits after a new leader chose the same subnet.

// NodesBySubnet returns the nodes holding subnet (IPv4 or IPv6, in the
// canonical form the servers write).
func (s *StateStore) NodesBySubnet(ws memdb.WatchSet, subnet string) ([]*structs.Node, error) {
	txn := s.db.Txn(false)
	return nodesBySubnet(txn, ws, subnet)
}

func nodesBySubnet(txn *memdb.Txn, ws memdb.WatchSet, subnet string) ([]*structs.Node, error) {
	var out []*structs.Node
	for _, index := range []string{"subnet", "subnet6"} {
		it, err := txn.Get(TableNodes, index, subnet)
		if err != nil {
			return nil, fmt.Errorf("node lookup by subnet: %w", err)
		}
		ws.Add(it.WatchCh())
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, raw.(*structs.Node))
		}
	}
	return out, nil
}

// CheckNodeSubnetsFree returns ErrConflict if another node than node
// already holds node's NetworkSubnet or NetworkSubnet6.
func (t *Txn) CheckNodeSubnetsFree(node *structs.Node) error {
	for _, subnet := range []string{node.NetworkSubnet, node.NetworkSubnet6} {
		if subnet == "" {
			continue
		}
		holders, err := nodesBySubnet(t.Txn, nil, subnet)
		if err != nil {
			return err
		}
		for _, h := range holders {
			if h.ID != node.ID {
				return fmt.Errorf("%w: subnet %s of node %s is already held by node %s", ErrConflict, subnet, node.ID, h.ID)
			}
		}
	}
	return nil
}
