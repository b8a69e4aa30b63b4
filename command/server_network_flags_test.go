package command

import (
	"testing"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/server"
)

// TestServerAllocNetworkFlags: the allocation network flags reach the
// server config, and the defaults are the server's.
func TestServerAllocNetworkFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		args        []string
		cidr, cidr6 string
		bits, bits6 int
	}{
		{"Defaults", nil, server.DefaultClusterCIDR, "", server.DefaultNodeSubnetBits, server.DefaultNodeSubnetBits6},
		{"Set", []string{"--alloc-cidr", "10.64.0.0/12", "--node-subnet-size", "26", "--alloc-cidr6", "fd42::/48", "--node-subnet-size6", "80"},
			"10.64.0.0/12", "fd42::/48", 26, 80},
		{"Off", []string{"--alloc-cidr="}, "", "", server.DefaultNodeSubnetBits, server.DefaultNodeSubnetBits6},
	} {
		for _, dev := range []bool{false, true} {
			f := &serverFlags{}
			cmd := &cobra.Command{}
			f.register(cmd, dev)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.config(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ClusterCIDR != tc.cidr || cfg.NodeSubnetBits != tc.bits || cfg.ClusterCIDR6 != tc.cidr6 || cfg.NodeSubnetBits6 != tc.bits6 {
				t.Errorf("%s (dev %v): %q/%d %q/%d, want %q/%d %q/%d", tc.name, dev,
					cfg.ClusterCIDR, cfg.NodeSubnetBits, cfg.ClusterCIDR6, cfg.NodeSubnetBits6, tc.cidr, tc.bits, tc.cidr6, tc.bits6)
			}
		}
	}
}
