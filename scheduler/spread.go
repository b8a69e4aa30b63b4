package scheduler

import (
	"github.com/berth-dev/berth/structs"
)

// trackProp starts counting the job's allocations per value of a node
// property, for the whole job (tg "") and per group.
func (s *schedCtx) trackProp(target string) {
	if s.props == nil {
		s.props = map[propKey]map[string]int{}
	}
	if _, ok := s.props[propKey{target: target}]; ok {
		return
	}
	s.props[propKey{target: target}] = map[string]int{}
	for _, a := range s.jobAllocs {
		if s.skip[a.ID] || a.TerminalStatus() {
			continue
		}
		s.countProp(target, a, 1)
	}
}

func (s *schedCtx) countProp(target string, a *structs.Allocation, delta int) {
	n := s.node(a.NodeID)
	if n == nil {
		return
	}
	val, ok := resolveTarget(target, n)
	if !ok {
		return
	}
	s.props[propKey{target: target}][val] += delta
	k := propKey{target: target, tg: a.TaskGroup}
	m := s.props[k]
	if m == nil {
		m = map[string]int{}
		s.props[k] = m
	}
	m[val] += delta
}

// countProps updates every tracked property for an allocation that
// starts (+1) or stops (-1).
func (s *schedCtx) countProps(a *structs.Allocation, delta int) {
	for k := range s.props {
		if k.tg == "" {
			s.countProp(k.target, a, delta)
		}
	}
}

func (s *schedCtx) propertyCount(target, tg, val string) int {
	return s.props[propKey{target: target, tg: tg}][val]
}

// spreadScore scores a node for the group's spread blocks, in [-1, 1]:
// positive where the node's attribute value has fewer allocations than
// its target share (or than the most used value, without targets).
func (s *schedCtx) spreadScore(ask *tgAsk, n *structs.Node) float64 {
	var total, weights float64
	count := ask.tg.Count
	for _, sp := range ask.spreads {
		w := float64(sp.Weight)
		if w <= 0 {
			w = float64(structs.DefaultSpreadWeight)
		}
		weights += w
		val, ok := resolveTarget(sp.Attribute, n)
		if !ok {
			total -= w
			continue
		}
		counts := s.props[propKey{target: sp.Attribute, tg: ask.tg.Name}]
		cur := counts[val]
		var score float64
		if len(sp.SpreadTarget) > 0 {
			score = targetSpreadScore(sp, counts, val, cur, count)
		} else {
			score = evenSpreadScore(counts, cur)
		}
		total += w * score
	}
	if weights == 0 {
		return 0
	}
	return total / weights
}

func targetSpreadScore(sp *structs.Spread, counts map[string]int, val string, cur, count int) float64 {
	var pct, sum float64
	found := false
	for _, t := range sp.SpreadTarget {
		sum += float64(t.Percent)
		if t.Value == val {
			pct = float64(t.Percent)
			found = true
		}
	}
	used := float64(cur)
	if !found {
		// Values without a target share what the targets leave over.
		pct = 100 - sum
		used = 0
		for v, c := range counts {
			listed := false
			for _, t := range sp.SpreadTarget {
				if t.Value == v {
					listed = true
					break
				}
			}
			if !listed {
				used += float64(c)
			}
		}
	}
	desired := pct / 100 * float64(count)
	if desired <= 0 {
		return -1
	}
	score := (desired - used) / desired
	return max(-1, min(1, score))
}

func evenSpreadScore(counts map[string]int, cur int) float64 {
	lo, hi := -1, 0
	for _, c := range counts {
		if c <= 0 {
			continue
		}
		if lo < 0 || c < lo {
			lo = c
		}
		if c > hi {
			hi = c
		}
	}
	if hi == 0 {
		return 0
	}
	if lo < 0 {
		lo = 0
	}
	switch {
	case cur < hi:
		return float64(hi-cur) / float64(hi)
	case lo < hi:
		return -float64(cur-lo) / float64(hi)
	}
	return 0
}
