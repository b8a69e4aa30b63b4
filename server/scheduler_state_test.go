package server

import (
	"testing"

	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func TestNodeListCacheFollowsTheNodesTable(t *testing.T) {
	st, err := state.NewStateStore()
	if err != nil {
		t.Fatal(err)
	}
	addNode := func(index uint64, id string) {
		txn := st.Txn(true)
		if err := txn.UpsertNode(index, &structs.Node{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
		txn.Commit()
	}
	addNode(5, "a")
	var cache nodeListCache
	first, err := newSnapshotState(st.Snapshot(), &cache).Nodes()
	if err != nil || len(first) != 1 {
		t.Fatalf("nodes = %v, %v", first, err)
	}
	again, _ := newSnapshotState(st.Snapshot(), &cache).Nodes()
	if &again[0] != &first[0] {
		t.Error("unchanged nodes table: the list was read again instead of shared")
	}
	old := st.Snapshot()
	addNode(6, "b")
	if nodes, _ := newSnapshotState(st.Snapshot(), &cache).Nodes(); len(nodes) != 2 {
		t.Fatalf("after a node joined: %d nodes, want 2", len(nodes))
	}
	// a view of an older snapshot still sees its own table
	if nodes, _ := newSnapshotState(old, &cache).Nodes(); len(nodes) != 1 {
		t.Fatalf("older snapshot: %d nodes, want 1", len(nodes))
	}
}
