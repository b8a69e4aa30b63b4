package scheduler

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// ComputeNodeClass returns a class for the node: a hash of everything a
// constraint may look at except what is unique to the node (attributes and
// meta whose key contains "unique.", its ID and name). Nodes of one class
// are interchangeable for feasibility, which is what lets the scheduler
// check a constraint once per class instead of once per node. The server
// should store it in Node.ComputedClass at registration; the scheduler
// computes it itself for nodes that have none.
func ComputeNodeClass(n *structs.Node) string {
	h := fnv.New64a()
	w := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	w(n.Datacenter)
	w(n.NodeClass)
	w(n.NodePool)
	writeMap := func(tag string, m map[string]string) {
		keys := make([]string, 0, len(m))
		for k := range m {
			if !strings.Contains(k, "unique.") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		w(tag)
		for _, k := range keys {
			w(k)
			w(m[k])
		}
	}
	writeMap("attr", n.Attributes)
	writeMap("meta", n.Meta)
	drivers := make([]string, 0, len(n.Drivers))
	for name, d := range n.Drivers {
		if d != nil {
			drivers = append(drivers, name+":"+strconv.FormatBool(d.Detected)+strconv.FormatBool(d.Healthy))
		}
	}
	slices.Sort(drivers)
	w("drivers")
	for _, d := range drivers {
		w(d)
	}
	return "v1:" + strconv.FormatUint(h.Sum64(), 10)
}
