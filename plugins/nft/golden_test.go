package nft

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/netlab"
	"github.com/berth-dev/berth/plugins/network"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestRulesetGolden pins the rendered table inet berth (as `nft list`
// prints it) for one bridge allocation with a wildcard and an
// address-bound mapping. Regenerate with -update.
func TestRulesetGolden(t *testing.T) {
	lab := netlab.New(t, "golden")
	a := lab.AddNode("a")
	p, _ := startPlugin(t, a, "10.88.1.0/24", network.RoutingHostGW)
	mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "golden", Ports: []network.PortMapping{
		{Label: "http", HostPort: 8080, ContainerPort: 80},
		{Label: "admin", HostPort: 9000, Protocol: "tcp", HostIP: a.Addr.String()},
	}})
	got, err := a.Exec(context.Background(), "nft", "list", "table", "inet", "berth")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "ruleset.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("ruleset differs from %s (rerun with -update if intended):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
