// Package state is berth's in-memory cluster state: go-memdb tables with
// indexes, point-in-time snapshots and watch sets for blocking queries. Only
// the FSM writes to it; everything else reads.
package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names.
const (
	tableIndex      = "index"
	TableNamespaces = "namespaces"
	TableJobs       = "jobs"
	TableEvals      = "evals"
	TableAllocs     = "allocs"
	TableNodes      = "nodes"
)

// IndexEntry records the Raft index that last modified a table.
type IndexEntry struct {
	Key   string
	Value uint64
}

func schema() *memdb.DBSchema {
	nsJobIndex := &memdb.CompoundIndex{Indexes: []memdb.Indexer{
		&memdb.StringFieldIndex{Field: "Namespace"},
		&memdb.StringFieldIndex{Field: "JobID"},
	}}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			},
		},
		TableNamespaces: {
			Name: TableNamespaces,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		TableJobs: {
			Name: TableJobs,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
					&memdb.StringFieldIndex{Field: "Namespace"},
					&memdb.StringFieldIndex{Field: "ID"},
				}}},
			},
		},
		TableEvals: {
			Name: TableEvals,
			Indexes: map[string]*memdb.IndexSchema{
				"id":  {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				"job": {Name: "job", Indexer: nsJobIndex},
			},
		},
		TableAllocs: {
			Name: TableAllocs,
			Indexes: map[string]*memdb.IndexSchema{
				"id":   {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				"job":  {Name: "job", Indexer: nsJobIndex},
				"node": {Name: "node", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
			},
		},
		TableNodes: {
			Name: TableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				// not unique: memdb would silently overwrite a duplicate;
				// the node-register apply refuses one instead (node_subnet.go)
				"subnet":  {Name: "subnet", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "NetworkSubnet"}},
				"subnet6": {Name: "subnet6", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "NetworkSubnet6"}},
			},
		},
		TableSchedulerConfig: schedulerConfigTableSchema(),
	}}
}

// Tables lists the tables a snapshot must carry, in restore order.
var Tables = []string{TableNamespaces, TableNodes, TableJobs, TableEvals, TableAllocs, TableSchedulerConfig}

func mustSchema() *memdb.DBSchema {
	s := schema()
	if err := s.Validate(); err != nil {
		panic(fmt.Sprintf("state schema: %v", err))
	}
	return s
}
