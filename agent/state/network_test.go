package state

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// An allocation's network survives reopening and goes with the alloc.
func TestPutNetwork(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	n := &network.AllocNetwork{AllocID: "a1", Mode: network.ModeBridge, NamespacePath: "/s/netns/a1", IP: "10.88.0.2"}
	// before the alloc is stored: dropped, as for tasks
	if err := db.PutNetwork("a1", n); err != nil {
		t.Fatal(err)
	}
	if err := db.PutAlloc(&structs.Allocation{ID: "a1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutAlloc(&structs.Allocation{ID: "a2"}); err != nil {
		t.Fatal(err)
	}
	recs, err := db.Allocs()
	if err != nil || len(recs) != 2 || recs[0].Network != nil {
		t.Fatalf("allocs %v, %v: want two without network", recs, err)
	}
	if err := db.PutNetwork("a1", n); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err = db.Allocs()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*network.AllocNetwork{}
	for _, r := range recs {
		got[r.Alloc.ID] = r.Network
	}
	if !reflect.DeepEqual(got, map[string]*network.AllocNetwork{"a1": n, "a2": nil}) {
		t.Fatalf("networks %v", got)
	}
	if err := db.DeleteAlloc("a1"); err != nil {
		t.Fatal(err)
	}
	if recs, _ = db.Allocs(); len(recs) != 1 || recs[0].Alloc.ID != "a2" {
		t.Fatalf("after delete: %v", recs)
	}
}
