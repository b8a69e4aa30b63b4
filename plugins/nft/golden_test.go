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
// address-bound mapping, IPv4 only (ruleset.golden) and dual-stack with an
// IPv6-bound mapping too (ruleset6.golden). Regenerate with -update.
func TestRulesetGolden(t *testing.T) {
	for _, tc := range []struct{ name, golden, subnet6 string }{
		{"ipv4", "ruleset.golden", ""},
		{"dual-stack", "ruleset6.golden", "fd88:0:0:1::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := netlab.New(t, "golden")
			a := lab.AddNode("a")
			ports := []network.PortMapping{
				{Label: "http", HostPort: 8080, ContainerPort: 80},
				{Label: "admin", HostPort: 9000, Protocol: "tcp", HostIP: a.Addr.String()},
			}
			var p *Plugin
			if tc.subnet6 == "" {
				p, _ = startPlugin(t, a, "10.88.1.0/24", network.RoutingHostGW)
			} else {
				p, _ = startPlugin6(t, a, "10.88.1.0/24", tc.subnet6, network.RoutingHostGW)
				ports = append(ports, network.PortMapping{Label: "admin6", HostPort: 9001, Protocol: "tcp", HostIP: a.Addr6.String()})
			}
			mustCreate(t, p, &network.AllocNetworkRequest{AllocID: "golden", Ports: ports})
			got, err := a.Exec(context.Background(), "nft", "list", "table", "inet", "berth")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.golden)
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
		})
	}
}
