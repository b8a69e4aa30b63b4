package fsm_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
	"github.com/berth-dev/berth/structs"
)

func subnetNode(id, subnet, subnet6 string) *structs.Node {
	return &structs.Node{ID: id, Name: id, Datacenter: "dc1", Status: structs.NodeStatusReady,
		NetworkSubnet: subnet, NetworkSubnet6: subnet6}
}

func applyRegister(t *testing.T, f *fsm.FSM, index uint64, n *structs.Node) any {
	t.Helper()
	data, err := fsm.Encode(fsm.NodeRegisterType, &fsm.NodeRegisterCommand{Node: n})
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
}

// TestNodeRegisterRefusesTakenSubnet: an entry giving a node a subnet
// another node holds (an old leader's entry committing after a new
// leader's choice) is refused, and the state is untouched.
func TestNodeRegisterRefusesTakenSubnet(t *testing.T) {
	t.Parallel()
	f, err := fsm.New(fsm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res := applyRegister(t, f, 1, subnetNode("a", "10.88.0.0/24", "fd88::/64")); res != nil {
		t.Fatalf("register a: %v", res)
	}
	cases := []struct{ name, subnet, subnet6 string }{
		{"SameIPv4", "10.88.0.0/24", ""},
		{"SameIPv6", "10.88.1.0/24", "fd88::/64"},
	}
	for i, tc := range cases {
		res := applyRegister(t, f, uint64(2+i), subnetNode("b", tc.subnet, tc.subnet6))
		err, _ := res.(error)
		if !errors.Is(err, state.ErrConflict) {
			t.Fatalf("%s: result %v, want ErrConflict", tc.name, res)
		}
		if n, _ := f.State().NodeByID(nil, "b"); n != nil {
			t.Fatalf("%s: refused node was stored: %+v", tc.name, n)
		}
	}
	if err := f.Fatal(); err != nil {
		t.Fatalf("a refused entry stopped the FSM: %v", err)
	}
	// the holder may re-register with its own subnet; others get theirs
	if res := applyRegister(t, f, 10, subnetNode("a", "10.88.0.0/24", "fd88::/64")); res != nil {
		t.Fatalf("re-register a: %v", res)
	}
	if res := applyRegister(t, f, 11, subnetNode("b", "10.88.1.0/24", "fd88:0:0:1::/64")); res != nil {
		t.Fatalf("register b: %v", res)
	}
	// a deleted node's subnet is free again
	data, err := fsm.Encode(fsm.NodeDeregisterType, &fsm.NodeDeregisterCommand{NodeIDs: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if res := f.Apply(&raft.Log{Index: 12, Type: raft.LogCommand, Data: data}); res != nil {
		t.Fatalf("deregister a: %v", res)
	}
	if res := applyRegister(t, f, 13, subnetNode("c", "10.88.0.0/24", "")); res != nil {
		t.Fatalf("register c on a's released subnet: %v", res)
	}
	holders, err := f.State().NodesBySubnet(nil, "10.88.0.0/24")
	if err != nil || len(holders) != 1 || holders[0].ID != "c" {
		t.Fatalf("holders of 10.88.0.0/24 = %v, %v", holders, err)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

// TestSnapshotCarriesNodeSubnets: the subnets survive snapshot and
// restore, and the restored store indexes them.
func TestSnapshotCarriesNodeSubnets(t *testing.T) {
	t.Parallel()
	f, err := fsm.New(fsm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res := applyRegister(t, f, 1, subnetNode("a", "10.88.3.0/24", "fd88:0:0:3::/64")); res != nil {
		t.Fatal(res)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g, err := fsm.New(fsm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	n, err := g.State().NodeByID(nil, "a")
	if err != nil || n == nil || n.NetworkSubnet != "10.88.3.0/24" || n.NetworkSubnet6 != "fd88:0:0:3::/64" {
		t.Fatalf("restored node = %+v, %v", n, err)
	}
	if res := applyRegister(t, g, 2, subnetNode("b", "", "fd88:0:0:3::/64")); res == nil {
		t.Fatal("restored store let a second node take a's IPv6 subnet")
	}
}
