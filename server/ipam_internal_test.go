package server

import (
	"net/netip"
	"testing"
)

func TestSubnetPoolArithmetic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		family int
		cidr   string
		bits   int
		size   uint64
		nth    map[uint64]string
	}{
		{4, "10.88.0.0/16", 24, 256, map[uint64]string{0: "10.88.0.0/24", 1: "10.88.1.0/24", 255: "10.88.255.0/24"}},
		{4, "10.64.0.0/10", 26, 1 << 16, map[uint64]string{1: "10.64.0.64/26", 4: "10.64.1.0/26", 65535: "10.127.255.192/26"}},
		{4, "192.168.7.0/24", 24, 1, map[uint64]string{0: "192.168.7.0/24"}},
		{6, "fd88::/48", 64, 1 << 16, map[uint64]string{0: "fd88::/64", 1: "fd88:0:0:1::/64", 65535: "fd88:0:0:ffff::/64"}},
		{6, "fd00::/8", 120, ^uint64(0), map[uint64]string{1: "fd00::100/120", 1 << 40: "fd00::1:0:0:0/120"}},
	} {
		p, err := parseSubnetPool(tc.family, tc.cidr, tc.bits)
		if err != nil {
			t.Fatalf("%s/%d: %v", tc.cidr, tc.bits, err)
		}
		if got := p.size(); got != tc.size {
			t.Errorf("%s/%d: size %d, want %d", tc.cidr, tc.bits, got, tc.size)
		}
		for i, want := range tc.nth {
			got := p.nth(i)
			if got.String() != want {
				t.Errorf("%s/%d: nth(%d) = %s, want %s", tc.cidr, tc.bits, i, got, want)
			}
			if !p.holds(got) {
				t.Errorf("%s/%d: pool does not hold its own %s", tc.cidr, tc.bits, got)
			}
		}
	}
}

func TestSubnetPoolLowestFree(t *testing.T) {
	t.Parallel()
	p, err := parseSubnetPool(6, "fd88::/48", 64)
	if err != nil {
		t.Fatal(err)
	}
	taken := map[netip.Prefix]bool{}
	for i := uint64(0); i < 1000; i++ {
		if i != 517 {
			taken[p.nth(i)] = true
		}
	}
	taken[netip.MustParsePrefix("10.88.0.0/24")] = true // another family: ignored
	got, err := p.lowestFree(taken)
	if err != nil || got != p.nth(517) {
		t.Fatalf("lowestFree = %s, %v; want the gap %s", got, err, p.nth(517))
	}
	if p.holds(netip.MustParsePrefix("fd89::/64")) || p.holds(netip.MustParsePrefix("fd88::/63")) || p.holds(netip.MustParsePrefix("10.88.0.0/24")) {
		t.Error("pool holds a subnet outside it")
	}
}
