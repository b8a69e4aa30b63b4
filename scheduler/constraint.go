package scheduler

import (
	"regexp"
	"strconv"
	"strings"

	version "github.com/hashicorp/go-version"

	"github.com/berth-dev/berth/structs"
)

// resolveTarget resolves a constraint target against a node: an
// interpolation such as ${attr.kernel.name}, ${meta.rack},
// ${node.unique.id}, ${node.datacenter}, or a literal.
func resolveTarget(target string, n *structs.Node) (string, bool) {
	if !strings.HasPrefix(target, "${") || !strings.HasSuffix(target, "}") {
		return target, true
	}
	key := target[2 : len(target)-1]
	switch key {
	case "node.unique.id":
		return n.ID, true
	case "node.unique.name":
		return n.Name, true
	case "node.datacenter":
		return n.Datacenter, true
	case "node.class":
		return n.NodeClass, true
	case "node.pool":
		pool := n.NodePool
		if pool == "" {
			pool = structs.DefaultNodePool
		}
		return pool, true
	}
	if rest, ok := strings.CutPrefix(key, "attr."); ok {
		v, ok := n.Attributes[rest]
		return v, ok
	}
	if rest, ok := strings.CutPrefix(key, "meta."); ok {
		v, ok := n.Meta[rest]
		return v, ok
	}
	return "", false
}

// targetEscapes reports whether a target refers to something unique to a
// node, so that results cannot be cached per computed class.
func targetEscapes(target string) bool {
	return strings.Contains(target, "unique.")
}

// matcher evaluates constraint and affinity operators, caching compiled
// regular expressions and version constraints for one evaluation.
type matcher struct {
	regexps  map[string]*regexp.Regexp
	versions map[string]version.Constraints
}

func (m *matcher) regexp(s string) *regexp.Regexp {
	if re, ok := m.regexps[s]; ok {
		return re
	}
	re, _ := regexp.Compile(s)
	if m.regexps == nil {
		m.regexps = map[string]*regexp.Regexp{}
	}
	m.regexps[s] = re
	return re
}

func (m *matcher) version(s string) version.Constraints {
	if c, ok := m.versions[s]; ok {
		return c
	}
	c, err := version.NewConstraint(s)
	if err != nil {
		c = nil
	}
	if m.versions == nil {
		m.versions = map[string]version.Constraints{}
	}
	m.versions[s] = c
	return c
}

// check evaluates one operator on resolved values. distinct_hosts and
// distinct_property depend on placements and are checked elsewhere; here
// they pass.
func (m *matcher) check(operand, l, r string, lok, rok bool) bool {
	switch operand {
	case structs.ConstraintEqual, structs.ConstraintEqualAlias, structs.ConstraintIs:
		return lok && rok && l == r
	case structs.ConstraintNotEqual, structs.ConstraintNot:
		return lok != rok || l != r
	case structs.ConstraintLess, structs.ConstraintLessEqual, structs.ConstraintGreater, structs.ConstraintGreaterEqual:
		return lok && rok && checkOrder(operand, l, r)
	case structs.ConstraintRegex:
		if !lok || !rok {
			return false
		}
		re := m.regexp(r)
		return re != nil && re.MatchString(l)
	case structs.ConstraintVersion, structs.ConstraintSemver:
		if !lok || !rok {
			return false
		}
		c := m.version(r)
		if c == nil {
			return false
		}
		var v *version.Version
		var err error
		if operand == structs.ConstraintSemver {
			v, err = version.NewSemver(l)
		} else {
			v, err = version.NewVersion(l)
		}
		return err == nil && c.Check(v)
	case structs.ConstraintSetContains, structs.ConstraintSetContainsAll:
		return lok && rok && setContains(l, r, true)
	case structs.ConstraintSetContainsAny:
		return lok && rok && setContains(l, r, false)
	case structs.ConstraintAttributeIsSet:
		return lok
	case structs.ConstraintAttributeIsNotSet:
		return !lok
	case structs.ConstraintDistinctHosts, structs.ConstraintDistinctProperty:
		return true
	}
	return false
}

// checkOrder compares numerically when both sides are numbers, else as
// strings.
func checkOrder(op, l, r string) bool {
	var cmp int
	li, lerr := strconv.ParseInt(l, 10, 64)
	ri, rerr := strconv.ParseInt(r, 10, 64)
	if lerr == nil && rerr == nil {
		cmp = compare(li, ri)
	} else {
		lf, lerr := strconv.ParseFloat(l, 64)
		rf, rerr := strconv.ParseFloat(r, 64)
		if lerr == nil && rerr == nil {
			cmp = compare(lf, rf)
		} else {
			cmp = strings.Compare(l, r)
		}
	}
	switch op {
	case structs.ConstraintLess:
		return cmp < 0
	case structs.ConstraintLessEqual:
		return cmp <= 0
	case structs.ConstraintGreater:
		return cmp > 0
	default:
		return cmp >= 0
	}
}

func compare[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// setContains reports whether the comma-separated set l contains all (or
// any) of the comma-separated values in r.
func setContains(l, r string, all bool) bool {
	for want := range strings.SplitSeq(r, ",") {
		want = strings.TrimSpace(want)
		found := false
		for have := range strings.SplitSeq(l, ",") {
			if strings.TrimSpace(have) == want {
				found = true
				break
			}
		}
		if all && !found {
			return false
		}
		if !all && found {
			return true
		}
	}
	return all
}

// meetsConstraint evaluates a constraint on a node.
func (m *matcher) meetsConstraint(c *structs.Constraint, n *structs.Node) bool {
	l, lok := resolveTarget(c.LTarget, n)
	r, rok := resolveTarget(c.RTarget, n)
	return m.check(c.Operand, l, r, lok, rok)
}

// meetsAffinity evaluates an affinity on a node.
func (m *matcher) meetsAffinity(a *structs.Affinity, n *structs.Node) bool {
	l, lok := resolveTarget(a.LTarget, n)
	r, rok := resolveTarget(a.RTarget, n)
	return m.check(a.Operand, l, r, lok, rok)
}

// globMatch matches s against a pattern where * matches any run of
// characters and ? any one character.
func globMatch(pattern, s string) bool {
	if pattern == "*" || pattern == s {
		return true
	}
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

func itoa(i int) string { return strconv.Itoa(i) }
