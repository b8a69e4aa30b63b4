package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

// nomadNetworkJob is a service job whose group "web" has net as its
// network block.
func nomadNetworkJob(id string, net *nomad.NetworkResource) *nomad.Job {
	job := nomadServiceJob(id)
	job.TaskGroups[0].Count = pointerOf(1)
	job.TaskGroups[0].Networks = []*nomad.NetworkResource{net}
	return job
}

func pointerOf[T any](v T) *T { return &v }

// TestNomadNetworkValidation: network blocks berth cannot run are refused
// at registration with a 400 naming the group and port, through the
// official Nomad client.
func TestNomadNetworkValidation(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers())
	nc := nomadClient(t, c.HTTPAddrs()[0])
	for _, tc := range []struct {
		name string
		net  *nomad.NetworkResource
		msg  string // "" means accepted
	}{
		{"Bridge", &nomad.NetworkResource{Mode: "bridge", ReservedPorts: []nomad.Port{{Label: "http", Value: 8080, To: 80}}}, ""},
		{"ToSameAsHost", &nomad.NetworkResource{Mode: "bridge", DynamicPorts: []nomad.Port{{Label: "http", To: -1}}}, ""},
		{"Host", &nomad.NetworkResource{Mode: "host", DynamicPorts: []nomad.Port{{Label: "http"}}}, ""},
		{"None", &nomad.NetworkResource{Mode: "none"}, ""},
		{"CNI", &nomad.NetworkResource{Mode: "cni/mynet"}, `group "web": network: network mode "cni/mynet" is not supported by berth`},
		{"UnknownMode", &nomad.NetworkResource{Mode: "overlay"}, `group "web": network: invalid network mode "overlay", must be bridge, host or none`},
		{"StaticTooHigh", &nomad.NetworkResource{Mode: "bridge", ReservedPorts: []nomad.Port{{Label: "http", Value: 70000}}},
			`group "web": network: port "http": static port 70000 out of range 1..65535`},
		{"StaticNegative", &nomad.NetworkResource{Mode: "bridge", ReservedPorts: []nomad.Port{{Label: "db", Value: -5}}},
			`port "db": static port -5 out of range 1..65535`},
		{"ToTooHigh", &nomad.NetworkResource{Mode: "bridge", DynamicPorts: []nomad.Port{{Label: "http", To: 65536}}},
			`group "web": network: port "http": port to 65536 out of range -1..65535`},
		{"ToTooLow", &nomad.NetworkResource{Mode: "bridge", DynamicPorts: []nomad.Port{{Label: "http", To: -2}}},
			`port "http": port to -2 out of range -1..65535`},
		{"StaticTwice", &nomad.NetworkResource{Mode: "bridge", ReservedPorts: []nomad.Port{{Label: "a", Value: 8080}, {Label: "b", Value: 8080}}},
			`port "b": static port 8080 already used by another port of the group`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := nc.Jobs().Register(nomadNetworkJob("net-"+strings.ToLower(tc.name), tc.net), nil)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("valid network refused: %v", err)
				}
				return
			}
			if code := statusCode(t, err); code != http.StatusBadRequest || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %d %v, want 400 saying %q", code, err, tc.msg)
			}
		})
	}
}

// TestStaticPortTakenStaysUnplaced: on a one-node cluster a second job
// asking for a static port the first holds is not placed, and its
// evaluation says why.
func TestStaticPortTakenStaysUnplaced(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 1)
	_, s := c.WaitForLeader(15 * time.Second)
	registerNode(t, client(t, s), schedNode(1))
	nc := nomadClient(t, "http://"+s.HTTPAddr())
	port := &nomad.NetworkResource{Mode: "bridge", ReservedPorts: []nomad.Port{{Label: "http", Value: 8080}}}
	if _, _, err := nc.Jobs().Register(nomadNetworkJob("first", port), nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 15*time.Second, "first to be placed", func() bool { return len(liveAllocs(t, s, "first")) == 1 })

	resp, _, err := nc.Jobs().Register(nomadNetworkJob("second", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	var eval *structs.Evaluation
	servertest.WaitFor(t, 15*time.Second, "second's evaluation to complete", func() bool {
		eval, _ = s.State().EvalByID(nil, resp.EvalID)
		return eval != nil && eval.Status == structs.EvalStatusComplete
	})
	if n := len(liveAllocs(t, s, "second")); n != 0 {
		t.Fatalf("second got %d allocations on a node whose port 8080 is taken", n)
	}
	m := eval.FailedTGAllocs["web"]
	if m == nil || eval.BlockedEval == "" {
		t.Fatalf("eval = %+v: want a failed placement of web and a blocked eval", eval)
	}
	const reason = "network: reserved port collision http=8080"
	if m.NodesExhausted != 1 || m.DimensionExhausted[reason] != 1 {
		t.Fatalf("failed placement metrics = %+v, want 1 node exhausted by %q", m, reason)
	}
}
