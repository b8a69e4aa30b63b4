package scheduler

import (
	"testing"

	"github.com/berth-dev/berth/structs"
)

func TestConstraintOperators(t *testing.T) {
	n := &structs.Node{
		ID: "id-1", Name: "n1", Datacenter: "dc1", NodeClass: "large", NodePool: "gpu",
		Attributes: map[string]string{
			"kernel.name": "linux", "cpu.numcores": "8", "os.version": "12.4",
			"berth.version": "1.2.3-beta1", "tags": "a,b,c", "unique.hostname": "h1",
		},
		Meta: map[string]string{"rack": "r1"},
	}
	cases := []struct {
		l, op, r string
		want     bool
	}{
		{"${attr.kernel.name}", "=", "linux", true},
		{"${attr.kernel.name}", "==", "windows", false},
		{"${attr.kernel.name}", "is", "linux", true},
		{"${attr.kernel.name}", "!=", "windows", true},
		{"${attr.missing}", "!=", "x", true},
		{"${attr.kernel.name}", "not", "linux", false},
		{"${attr.cpu.numcores}", ">", "4", true},
		{"${attr.cpu.numcores}", ">=", "8", true},
		{"${attr.cpu.numcores}", "<", "10", true}, // numeric, not lexical
		{"${attr.cpu.numcores}", "<=", "7", false},
		{"${attr.os.version}", ">", "12.10", true}, // float compare
		{"${attr.missing}", "<", "1", false},
		{"${attr.kernel.name}", "regexp", "^lin", true},
		{"${attr.kernel.name}", "regexp", "^win", false},
		{"${attr.os.version}", "version", ">= 12.0, < 13", true},
		{"${attr.os.version}", "version", "> 13", false},
		{"${attr.berth.version}", "semver", ">= 1.2.0", false}, // prerelease excluded
		{"${attr.berth.version}", "semver", ">= 1.2.3-beta0", true},
		{"${attr.tags}", "set_contains", "a,c", true},
		{"${attr.tags}", "set_contains_all", "a,d", false},
		{"${attr.tags}", "set_contains_any", "x,b", true},
		{"${attr.tags}", "set_contains_any", "x,y", false},
		{"${attr.kernel.name}", "is_set", "", true},
		{"${attr.nope}", "is_set", "", false},
		{"${attr.nope}", "is_not_set", "", true},
		{"${node.unique.id}", "=", "id-1", true},
		{"${node.unique.name}", "=", "n1", true},
		{"${node.datacenter}", "=", "dc1", true},
		{"${node.class}", "=", "large", true},
		{"${node.pool}", "=", "gpu", true},
		{"${meta.rack}", "=", "r1", true},
		{"${meta.rack}", "=", "r2", false},
		{"${attr.unique.hostname}", "=", "h1", true},
	}
	var m matcher
	for _, c := range cases {
		got := m.meetsConstraint(&structs.Constraint{LTarget: c.l, Operand: c.op, RTarget: c.r}, n)
		if got != c.want {
			t.Errorf("%s %s %s: got %v, want %v", c.l, c.op, c.r, got, c.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "dc1", true}, {"dc*", "dc1", true}, {"dc*", "eu1", false}, {"dc?", "dc1", true},
		{"dc?", "dc12", false}, {"*-west", "us-west", true}, {"dc1", "dc1", true}, {"a*b*c", "axxbyyc", true},
	} {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("glob %q %q: got %v", c.p, c.s, got)
		}
	}
}

func TestRescheduleDelay(t *testing.T) {
	const s = 1_000_000_000
	p := &structs.ReschedulePolicy{Delay: 5 * s, MaxDelay: 60 * s}
	for _, c := range []struct {
		fn   string
		n    int
		want int64
	}{
		{"constant", 0, 5}, {"constant", 4, 5},
		{"exponential", 0, 5}, {"exponential", 1, 10}, {"exponential", 3, 40}, {"exponential", 10, 60},
		{"fibonacci", 0, 5}, {"fibonacci", 1, 5}, {"fibonacci", 2, 10}, {"fibonacci", 3, 15}, {"fibonacci", 4, 25}, {"fibonacci", 20, 60},
	} {
		p.DelayFunction = c.fn
		if got := rescheduleDelay(p, c.n); int64(got) != c.want*s {
			t.Errorf("%s n=%d: got %v, want %ds", c.fn, c.n, got, c.want)
		}
	}
}

func TestAllocIndex(t *testing.T) {
	if got := allocIndex(allocName("web", "api", 12)); got != 12 {
		t.Fatalf("got %d", got)
	}
	if got := allocIndex("bad"); got != -1 {
		t.Fatalf("got %d", got)
	}
}
