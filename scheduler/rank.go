package scheduler

import (
	"math"

	"github.com/berth-dev/berth/structs"
)

// Candidate sample sizes. Without spread or affinity two feasible nodes
// are enough (the power of two choices); with them a larger sample finds
// the under-used values.
const (
	defaultCandidates   = 2
	spreadCandidates    = 50
	maxScoreMetaData    = 3
	maxPreemptCandidate = 16
)

// Scorer names, as in Nomad's ScoreMetaData.
const (
	scoreBinpack      = "binpack"
	scoreAntiAffinity = "job-anti-affinity"
	scoreAffinity     = "node-affinity"
	scoreSpread       = "allocation-spread"
	scoreReschedule   = "node-reschedule-penalty"
)

// placeOpts are the per-placement inputs to ranking.
type placeOpts struct {
	// penaltyNodes are nodes to avoid (a rescheduled alloc's previous
	// nodes).
	penaltyNodes []string
	preempt      bool
}

type candidate struct {
	node  *structs.Node
	u     *nodeUsage
	score float64
	parts [5]float64 // binpack, anti-affinity, affinity, spread, reschedule
	has   [5]bool
	// preempt is set when the node only fits after evicting these.
	preempt []*structs.Allocation
}

var scoreNames = [5]string{scoreBinpack, scoreAntiAffinity, scoreAffinity, scoreSpread, scoreReschedule}

// selectNode visits nodes in the evaluation's order until it has found
// enough feasible candidates with room, and returns the best one (nil when
// none) and the metric that explains the choice.
func (s *schedCtx) selectNode(ask *tgAsk, opts placeOpts) (*candidate, *structs.AllocMetric) {
	metric := &structs.AllocMetric{}
	if len(s.nodes) == 0 {
		return nil, metric
	}
	limit := defaultCandidates
	if len(ask.spreads) > 0 || len(ask.affinities) > 0 {
		limit = spreadCandidates
	}
	for _, sp := range ask.spreads {
		s.trackProp(sp.Attribute)
	}
	for _, dp := range ask.distinctProps {
		s.trackProp(dp.c.LTarget)
	}
	var top [maxScoreMetaData]candidate
	ntop := 0
	var best candidate
	found := 0
	var exhausted []*structs.Node
	binpack := s.sconf.EffectiveAlgorithm() != structs.SchedulerAlgorithmSpread
	for visited := 0; visited < len(s.nodes) && found < limit; visited++ {
		n := s.nextNode()
		if !nodeReady(n) {
			continue
		}
		reason := s.feasible(ask, n)
		if reason == filterOutOfScope {
			continue
		}
		metric.NodesEvaluated++
		if reason != "" {
			metric.NodesFiltered++
			incr(&metric.ConstraintFiltered, reason)
			if n.NodeClass != "" {
				incr(&metric.ClassFiltered, n.NodeClass)
			}
			continue
		}
		u := s.usage(n)
		if dim := u.fit(ask); dim != "" {
			metric.NodesExhausted++
			incr(&metric.DimensionExhausted, dim)
			if n.NodeClass != "" {
				incr(&metric.ClassExhausted, n.NodeClass)
			}
			if opts.preempt && len(exhausted) < maxPreemptCandidate {
				exhausted = append(exhausted, n)
			}
			continue
		}
		found++
		c := s.score(ask, n, u, opts, binpack)
		if found == 1 || c.score > best.score {
			best = c
		}
		// Keep the top candidates, best first, for the explanation.
		i := ntop
		if ntop < maxScoreMetaData {
			ntop++
		} else if c.score <= top[ntop-1].score {
			continue
		} else {
			i = ntop - 1
		}
		for ; i > 0 && top[i-1].score < c.score; i-- {
			top[i] = top[i-1]
		}
		top[i] = c
	}
	if found == 0 && len(exhausted) > 0 {
		if c := s.bestPreemption(ask, exhausted, opts, binpack); c != nil {
			best = *c
			found = 1
			top[0] = best
			ntop = 1
		}
	}
	if found == 0 {
		return nil, metric
	}
	metric.ScoreMetaData = make([]*structs.NodeScoreMeta, ntop)
	for i := range ntop {
		c := &top[i]
		sm := &structs.NodeScoreMeta{NodeID: c.node.ID, NormScore: c.score, Scores: make(map[string]float64, 2)}
		for k, ok := range c.has {
			if ok {
				sm.Scores[scoreNames[k]] = c.parts[k]
			}
		}
		metric.ScoreMetaData[i] = sm
	}
	return &best, metric
}

func incr(m *map[string]int, k string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[k]++
}

// score ranks a feasible node with room: the mean of the scorers that
// apply.
func (s *schedCtx) score(ask *tgAsk, n *structs.Node, u *nodeUsage, opts placeOpts, binpack bool) candidate {
	c := candidate{node: n, u: u}
	c.parts[0], c.has[0] = fitScore(u, ask, binpack), true
	if coll := u.tgCount[ask.tg.Name]; coll > 0 && ask.tg.Count > 0 {
		c.parts[1], c.has[1] = -float64(coll+1)/float64(ask.tg.Count), true
	}
	if len(ask.affinities) > 0 {
		if v := s.affinityScore(ask, n); v != 0 {
			c.parts[2], c.has[2] = v, true
		}
	}
	if len(ask.spreads) > 0 {
		if v := s.spreadScore(ask, n); v != 0 {
			c.parts[3], c.has[3] = v, true
		}
	}
	for _, id := range opts.penaltyNodes {
		if id == n.ID {
			c.parts[4], c.has[4] = -1, true
			break
		}
	}
	var sum float64
	cnt := 0
	for i, ok := range c.has {
		if ok {
			sum += c.parts[i]
			cnt++
		}
	}
	c.score = sum / float64(cnt)
	return c
}

// fitScore scores how well the ask packs onto the node, in [0, 1]: with
// binpack fuller nodes score higher, with spread emptier ones. It uses the
// classic 20 - (10^freeCPU + 10^freeMem) fitness, scaled to 0..1.
func fitScore(u *nodeUsage, ask *tgAsk, binpack bool) float64 {
	freeCPU, freeMem := 0.0, 0.0
	if u.capCPU > 0 {
		freeCPU = 1 - float64(u.cpu+ask.cpu+int64(ask.cores)*u.mhzPerCore)/float64(u.capCPU)
	}
	if u.capMem > 0 {
		freeMem = 1 - float64(u.mem+ask.mem)/float64(u.capMem)
	}
	total := math.Exp(freeCPU*math.Ln10) + math.Exp(freeMem*math.Ln10)
	score := 20 - total
	if !binpack {
		score = total - 2
	}
	return max(0, min(18, score)) / 18
}

// affinityScore is the weighted share of matching affinities, in [-1, 1],
// cached per node class unless an affinity looks at unique attributes.
func (s *schedCtx) affinityScore(ask *tgAsk, n *structs.Node) float64 {
	var class string
	if !ask.affinityEscaped {
		class = s.nodeClass(n)
		if v, ok := ask.affinity[class]; ok {
			return v
		}
	}
	var total float64
	for _, a := range ask.affinities {
		if s.m.meetsAffinity(a, n) {
			total += float64(a.Weight)
		}
	}
	v := 0.0
	if ask.affinityWeightSum > 0 {
		v = total / ask.affinityWeightSum
	}
	if !ask.affinityEscaped {
		if ask.affinity == nil {
			ask.affinity = map[string]float64{}
		}
		ask.affinity[class] = v
	}
	return v
}
