package bench

import (
	"encoding/json"
	"testing"
	"time"
)

// TestBenchHarness checks the helpers the benchmarks rely on; it measures
// nothing and starts no server.
func TestBenchHarness(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	want := summary{N: 20, Min: 1 * time.Millisecond, Max: 20 * time.Millisecond, Mean: 10500 * time.Microsecond,
		P50: 10 * time.Millisecond, P90: 18 * time.Millisecond, P99: 20 * time.Millisecond}
	if s != want {
		t.Errorf("summarize(1..20ms) = %+v, want %+v", s, want)
	}
	if ds[0] != 20*time.Millisecond {
		t.Errorf("summarize reordered its input")
	}
	if got := summarize(nil); got != (summary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("percentile of one sample = %v, want 7", got)
	}

	var body struct {
		Job struct {
			ID, Type   string
			TaskGroups []struct {
				Count int
				Tasks []struct{ Driver string }
			}
		}
	}
	if err := json.Unmarshal(jobBody("f-1"), &body); err != nil {
		t.Fatalf("job body: %v", err)
	}
	if body.Job.ID != "f-1" || body.Job.Type != "service" || len(body.Job.TaskGroups) != 1 ||
		body.Job.TaskGroups[0].Count != 1 || body.Job.TaskGroups[0].Tasks[0].Driver != "docker" {
		t.Errorf("job body = %+v", body)
	}

	ports := freePorts(t, 9)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Errorf("freePorts returned %v: duplicate or invalid", ports)
		}
		seen[p] = true
	}
}
