package server

import "testing"

func TestMemoryLimitFor(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name       string
		configured int64
		ram        uint64
		want       int64
	}{
		{"default on a big machine is the cap", 0, 24 * gib, DefaultMemoryLimitCap},
		{"default on a small machine is half its RAM", 0, gib, gib / 2},
		{"unknown RAM: the cap", 0, 0, DefaultMemoryLimitCap},
		{"configured wins", 3 * gib, 24 * gib, 3 * gib},
		{"negative: none", -1, 24 * gib, -1},
	} {
		if got := memoryLimitFor(tc.configured, tc.ram); got != tc.want {
			t.Errorf("%s: memoryLimitFor(%d, %d) = %d, want %d", tc.name, tc.configured, tc.ram, got, tc.want)
		}
	}
}
