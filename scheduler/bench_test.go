package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

// benchCluster builds n nodes with room for ~40 small allocs each, spread
// over 4 datacenters and racks.
func benchCluster(b *testing.B, n int) *schedtest.Harness {
	h := schedtest.New()
	h.NoFitCheck = true
	for i := range n {
		node := schedtest.Node(i)
		node.Datacenter = fmt.Sprintf("dc%d", i%4)
		node.ComputedClass = scheduler.ComputeNodeClass(node)
		h.State.UpsertNode(node)
	}
	return h
}

func benchPlace(b *testing.B, nodes, jobs, count int, mutate func(*structs.Job)) {
	b.ReportAllocs()
	placed := 0
	for b.Loop() {
		b.StopTimer()
		h := benchCluster(b, nodes)
		var evals []*structs.Evaluation
		for k := range jobs {
			j := schedtest.Job(fmt.Sprintf("job-%d", k), count)
			if mutate != nil {
				mutate(j)
			}
			h.State.UpsertJob(j)
			evals = append(evals, h.NewEval(j, structs.EvalTriggerJobRegister))
		}
		b.StartTimer()
		for _, e := range evals {
			if err := h.Process(e); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, e := range evals {
			placed += len(h.State.LiveAllocs(e.Namespace, e.JobID))
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

func BenchmarkServiceCount10000Nodes1000(b *testing.B)  { benchPlace(b, 1000, 1, 10000, nil) }
func BenchmarkServiceCount10000Nodes5000(b *testing.B)  { benchPlace(b, 5000, 1, 10000, nil) }
func BenchmarkServiceCount10000Nodes10000(b *testing.B) { benchPlace(b, 10000, 1, 10000, nil) }
func BenchmarkService1000JobsCount10Nodes5000(b *testing.B) {
	benchPlace(b, 5000, 1000, 10, nil)
}
func BenchmarkServiceSpreadCount10000Nodes5000(b *testing.B) {
	benchPlace(b, 5000, 1, 10000, func(j *structs.Job) {
		j.Spreads = []*structs.Spread{{Attribute: "${node.datacenter}", Weight: 50}}
	})
}
