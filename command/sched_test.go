package command

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/structs"
)

func TestPlacementExplanation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    *structs.AllocMetric
		want []string
	}{
		{name: "nil", m: nil, want: nil},
		{
			name: "nothing eligible, empty datacenter",
			m:    &structs.AllocMetric{NodesAvailable: map[string]int{"dc2": 0, "dc1": 3}},
			want: []string{"No nodes were eligible for evaluation", `No nodes are available in datacenter "dc2"`},
		},
		{
			name: "empty node pool",
			m:    &structs.AllocMetric{NodePool: "gpu"},
			want: []string{`No nodes in node pool "gpu"`},
		},
		{
			name: "filters and exhaustion, largest first, ties by name",
			m: &structs.AllocMetric{
				NodesEvaluated:     10,
				NodesFiltered:      6,
				ClassFiltered:      map[string]int{"small": 1},
				ConstraintFiltered: map[string]int{"${attr.kernel.name} = windows": 4, "distinct_hosts": 1, "${meta.rack} = r9": 1, "zero": 0},
				NodesExhausted:     4,
				ClassExhausted:     map[string]int{"big": 4},
				DimensionExhausted: map[string]int{"memory": 3, "cpu": 1},
				QuotaExhausted:     []string{"cpu"},
			},
			want: []string{
				`1 node filtered by class "small"`,
				"4 nodes filtered by constraint ${attr.kernel.name} = windows",
				"1 node filtered by constraint ${meta.rack} = r9",
				"1 node filtered by constraint distinct_hosts",
				"4 nodes exhausted",
				`4 nodes of class "big" exhausted`,
				"3 nodes exhausted on memory",
				"1 node exhausted on cpu",
				`Quota limit hit "cpu"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, placementExplanation(tc.m)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestScoreTable(t *testing.T) {
	t.Parallel()
	meta := []*structs.NodeScoreMeta{
		{NodeID: "bbbbbbbb-2", Scores: map[string]float64{"binpack": 0.5}, NormScore: 0.5},
		nil,
		{NodeID: "aaaaaaaa-1", Scores: map[string]float64{"binpack": 0.9, "job-anti-affinity": -0.25}, NormScore: 0.325},
		{NodeID: "cccccccc-3", Scores: map[string]float64{"binpack": 0.95, "job-anti-affinity": 0}, NormScore: 0.95},
	}
	header, rows := scoreTable(meta, false)
	if diff := cmp.Diff([]string{"Node", "binpack", "job-anti-affinity", "final score"}, header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	want := [][]string{
		{"cccccccc", "0.95", "0", "0.95"},
		{"bbbbbbbb", "0.5", "0", "0.5"},
		{"aaaaaaaa", "0.9", "-0.25", "0.325"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if h, r := scoreTable(nil, false); h != nil || r != nil {
		t.Errorf("empty metadata gave %v %v", h, r)
	}
}

func TestDesiredUpdatesLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		u    *structs.DesiredUpdates
		want string
	}{
		{nil, "no changes"},
		{&structs.DesiredUpdates{}, "no changes"},
		{&structs.DesiredUpdates{Place: 3}, "3 create"},
		{&structs.DesiredUpdates{Place: 1, Stop: 2, InPlaceUpdate: 4, DestructiveUpdate: 5, Ignore: 6}, "1 create, 2 destroy, 4 in-place update, 5 create/destroy update, 6 ignore"},
		{&structs.DesiredUpdates{Migrate: 1, Canary: 2, Preemptions: 3}, "1 migrate, 2 canary, 3 preemption"},
	}
	for _, tc := range tests {
		if got := desiredUpdatesLine(tc.u); got != tc.want {
			t.Errorf("desiredUpdatesLine(%+v) = %q, want %q", tc.u, got, tc.want)
		}
	}
}

func TestWritePlacementMetrics(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	m := &structs.AllocMetric{
		NodesEvaluated: 5000, NodesFiltered: 10, NodesExhausted: 2, NodesInPool: 5000, NodePool: "default",
		NodesAvailable:     map[string]int{"dc1": 1700, "dc2": 1650},
		ConstraintFiltered: map[string]int{"${attr.cpu.arch} = arm64": 10},
		DimensionExhausted: map[string]int{"memory": 2},
		AllocationTime:     1500 * time.Microsecond,
		ScoreMetaData:      []*structs.NodeScoreMeta{{NodeID: "n1", Scores: map[string]float64{"binpack": 0.8}, NormScore: 0.8}},
	}
	if err := writePlacementMetrics(&b, m, true); err != nil {
		t.Fatal(err)
	}
	want := `Nodes Evaluated = 5000
Nodes Filtered  = 10
Nodes Exhausted = 2
Nodes In Pool   = 5000 (default)
Nodes Available = dc1=1700, dc2=1650
Allocation Time = 1.5ms
  * 10 nodes filtered by constraint ${attr.cpu.arch} = arm64
  * 2 nodes exhausted
  * 2 nodes exhausted on memory

Node  binpack  final score
n1    0.8      0.8
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestJobStatusShowsLatestPlacementFailures(t *testing.T) {
	t.Parallel()
	failed := map[string]*structs.AllocMetric{"web": {CoalescedFailures: 2, NodesEvaluated: 3, NodesExhausted: 3, DimensionExhausted: map[string]int{"memory": 3}}}
	tests := []struct {
		name  string
		evals []*structs.Evaluation
		want  string
	}{
		{name: "no evals", want: ""},
		{
			name: "latest has failures",
			evals: []*structs.Evaluation{
				{ID: "old", CreateIndex: 1, FailedTGAllocs: map[string]*structs.AllocMetric{"old": {}}},
				{ID: "new", CreateIndex: 5, Status: "complete", FailedTGAllocs: failed},
			},
			want: "\nPlacement Failure\nTask Group \"web\" (failed to place 3 allocations):\n  * 3 nodes exhausted\n  * 3 nodes exhausted on memory\n",
		},
		{
			name: "latest is a blocked eval without metrics: its previous eval's",
			evals: []*structs.Evaluation{
				{ID: "blocked", CreateIndex: 6, Status: "blocked", PreviousEval: "first"},
				{ID: "first", CreateIndex: 5, Status: "complete", FailedTGAllocs: failed},
			},
			want: "\nPlacement Failure\nTask Group \"web\" (failed to place 3 allocations):\n  * 3 nodes exhausted\n  * 3 nodes exhausted on memory\n",
		},
		{
			name: "failures of an older eval are history",
			evals: []*structs.Evaluation{
				{ID: "old", CreateIndex: 1, FailedTGAllocs: failed},
				{ID: "new", CreateIndex: 5, Status: "complete"},
			},
			want: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			writeJobPlacementFailures(&b, tc.evals)
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// fakeAPI answers the few endpoints the scheduling commands use with canned
// bodies per "METHOD path", and records the bodies it received.
type fakeAPI struct {
	mu     sync.Mutex
	routes map[string]string
	status map[string]int
	bodies map[string][]byte
}

func newFakeAPI(t *testing.T, routes map[string]string) (*fakeAPI, string) {
	t.Helper()
	f := &fakeAPI{routes: routes, status: map[string]int{}, bodies: map[string][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies[key] = b
		body, ok := f.routes[key]
		code := f.status[key]
		f.mu.Unlock()
		if !ok {
			http.Error(w, "not found: "+key, http.StatusNotFound)
			return
		}
		if code != 0 {
			w.WriteHeader(code)
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeAPI) body(key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[key]
}

const planJobFile = `{"Job":{"ID":"web","Name":"web","Type":"service","Datacenters":["dc1"],
"TaskGroups":[{"Name":"web","Count":3,"Tasks":[{"Name":"t","Driver":"docker","Config":{"image":"nginx"}}]}]}}`

func TestJobPlanExitCodes(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "web.json", planJobFile)

	_, ok := newFakeAPI(t, map[string]string{
		"PUT /v1/job/web/plan": `{"JobModifyIndex":42,"Annotations":{"DesiredTGUpdates":{"web":{"Place":3}}}}`,
	})
	code, stdout, stderr := run(t, "job", "plan", "-address", ok, file)
	if code != ExitOK {
		t.Fatalf("all placed: exit %d, want 0; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{`Task Group: "web" (3 create)`, "All tasks successfully allocated", "berth job run -check-index 42 " + file} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	_, failing := newFakeAPI(t, map[string]string{
		"PUT /v1/job/web/plan": `{"JobModifyIndex":0,"Annotations":{"DesiredTGUpdates":{"web":{"Place":3}}},
			"FailedTGAllocs":{"web":{"NodesEvaluated":2,"NodesFiltered":2,"CoalescedFailures":2,"ConstraintFiltered":{"${attr.kernel.name} = windows":2}}}}`,
	})
	code, stdout, stderr = run(t, "job", "plan", "-address", failing, file)
	if code != ExitError {
		t.Fatalf("failed placements: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"Failed to place 3 allocations", "2 nodes filtered by constraint ${attr.kernel.name} = windows", "-check-index 0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if stderr != "" {
		t.Errorf("failed placements are not an error message: %q", stderr)
	}

	// -json still exits 1 and prints the response.
	code, stdout, _ = run(t, "job", "plan", "-json", "-address", failing, file)
	var resp structs.JobPlanResponse
	if code != ExitError || json.Unmarshal([]byte(stdout), &resp) != nil || len(resp.FailedTGAllocs) != 1 {
		t.Errorf("plan -json: exit %d:\n%s", code, stdout)
	}

	if code, _, _ := run(t, "job", "plan", "-address", closedAddress(t), file); code != ExitError {
		t.Errorf("unreachable: exit %d, want 1", code)
	}
	if code, _, _ := run(t, "job", "plan"); code != ExitUsage {
		t.Errorf("no file: exit %d, want 2", code)
	}
}

func TestJobRunCheckIndex(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "web.json", planJobFile)
	f, addr := newFakeAPI(t, map[string]string{"PUT /v1/jobs": `{"EvalID":"","JobModifyIndex":43}`})

	if code, _, stderr := run(t, "job", "run", "-detach", "-check-index", "42", "-address", addr, file); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var req structs.JobRegisterRequest
	if err := json.Unmarshal(f.body("PUT /v1/jobs"), &req); err != nil {
		t.Fatal(err)
	}
	if !req.EnforceIndex || req.JobModifyIndex != 42 {
		t.Errorf("register request: EnforceIndex=%v JobModifyIndex=%d", req.EnforceIndex, req.JobModifyIndex)
	}

	// -check-index 0 is a check too: the job must be new.
	if code, _, _ := run(t, "job", "run", "-detach", "-check-index", "0", "-address", addr, file); code != ExitOK {
		t.Fatal("check-index 0 failed")
	}
	req = structs.JobRegisterRequest{}
	_ = json.Unmarshal(f.body("PUT /v1/jobs"), &req)
	if !req.EnforceIndex || req.JobModifyIndex != 0 {
		t.Errorf("check-index 0: EnforceIndex=%v JobModifyIndex=%d", req.EnforceIndex, req.JobModifyIndex)
	}

	// Without the flag there is no check.
	_, _, _ = run(t, "job", "run", "-detach", "-address", addr, file)
	req = structs.JobRegisterRequest{}
	_ = json.Unmarshal(f.body("PUT /v1/jobs"), &req)
	if req.EnforceIndex {
		t.Error("plain run enforced an index")
	}

	// A conflict is exit 1 with advice.
	f.mu.Lock()
	f.status["PUT /v1/jobs"] = http.StatusConflict
	f.routes["PUT /v1/jobs"] = "conflict: job modify index is 44"
	f.mu.Unlock()
	code, _, stderr := run(t, "job", "run", "-detach", "-check-index", "42", "-address", addr, file)
	if code != ExitError || !strings.Contains(stderr, "changed since index 42") {
		t.Errorf("conflict: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := run(t, "job", "run", "-check-index", "x", file); code != ExitUsage {
		t.Errorf("bad check-index: exit %d, want 2", code)
	}
}

func TestSchedulingCommands(t *testing.T) {
	t.Parallel()
	f, addr := newFakeAPI(t, map[string]string{
		"GET /v1/operator/scheduler/configuration": `{"SchedulerConfig":{"SchedulerAlgorithm":"binpack","PreemptionConfig":{"SystemSchedulerEnabled":true},"ModifyIndex":7}}`,
		"PUT /v1/operator/scheduler/configuration": `{"Updated":true,"Index":8}`,
		"GET /v1/node/n1":                          `{"ID":"n1","Name":"node-1"}`,
		"PUT /v1/node/n1/eligibility":              `{"NodeModifyIndex":9}`,
		"GET /v1/evaluation/e1": `{"ID":"e1","Status":"complete","Type":"service","JobID":"web","BlockedEval":"e2",
			"FailedTGAllocs":{"web":{"NodesEvaluated":5,"NodesExhausted":5,"DimensionExhausted":{"memory":5}}}}`,
		"GET /v1/allocation/a1": `{"ID":"a1","Name":"web.web[0]","JobID":"web","ClientStatus":"running","DesiredStatus":"run",
			"Metrics":{"NodesEvaluated":4,"NodesFiltered":1,"ConstraintFiltered":{"${attr.os.name} = ubuntu":1},
			"ScoreMetaData":[{"NodeID":"n1","Scores":{"binpack":0.7},"NormScore":0.7}]}}`,
	})

	code, stdout, stderr := run(t, "operator", "scheduler", "get-config", "-address", addr)
	if code != ExitOK || !strings.Contains(squash(stdout), "Scheduler Algorithm = binpack") {
		t.Errorf("get-config: exit %d %s\n%s", code, stderr, stdout)
	}

	code, _, stderr = run(t, "operator", "scheduler", "set-config", "-address", addr,
		"-scheduler-algorithm", "spread", "-preempt-service-scheduler", "true")
	if code != ExitOK {
		t.Fatalf("set-config: exit %d: %s", code, stderr)
	}
	var cfg structs.SchedulerConfiguration
	if err := json.Unmarshal(f.body("PUT /v1/operator/scheduler/configuration"), &cfg); err != nil {
		t.Fatal(err)
	}
	want := structs.SchedulerConfiguration{SchedulerAlgorithm: "spread", ModifyIndex: 7,
		PreemptionConfig: structs.PreemptionConfig{SystemSchedulerEnabled: true, ServiceSchedulerEnabled: true}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("set-config kept the other settings wrong (-want +got):\n%s", diff)
	}
	if code, _, _ := run(t, "operator", "scheduler", "set-config", "-address", addr, "-scheduler-algorithm", "random"); code != ExitUsage {
		t.Errorf("bad algorithm: exit %d, want 2", code)
	}
	if code, _, _ := run(t, "operator", "scheduler", "set-config", "-address", addr, "-preempt-batch-scheduler", "maybe"); code != ExitUsage {
		t.Errorf("bad bool: exit %d, want 2", code)
	}

	code, stdout, _ = run(t, "node", "eligibility", "-disable", "-address", addr, "n1")
	if code != ExitOK || !strings.Contains(stdout, "ineligible") {
		t.Errorf("node eligibility: exit %d\n%s", code, stdout)
	}
	if !strings.Contains(string(f.body("PUT /v1/node/n1/eligibility")), `"Eligibility":"ineligible"`) {
		t.Errorf("eligibility body %s", f.body("PUT /v1/node/n1/eligibility"))
	}
	if code, _, _ := run(t, "node", "eligibility", "-address", addr, "n1"); code != ExitUsage {
		t.Errorf("neither -enable nor -disable: exit %d, want 2", code)
	}
	if code, _, _ := run(t, "node", "eligibility", "-enable", "-disable", "-address", addr, "n1"); code != ExitUsage {
		t.Errorf("both: exit %d, want 2", code)
	}

	code, stdout, _ = run(t, "eval", "status", "-address", addr, "e1")
	if code != ExitOK || !strings.Contains(stdout, "5 nodes exhausted on memory") || !strings.Contains(stdout, "waiting for additional capacity") {
		t.Errorf("eval status: exit %d\n%s", code, stdout)
	}

	code, stdout, _ = run(t, "alloc", "status", "-verbose", "-address", addr, "a1")
	for _, w := range []string{"Placement Metrics", "1 node filtered by constraint ${attr.os.name} = ubuntu", "final score"} {
		if code != ExitOK || !strings.Contains(stdout, w) {
			t.Errorf("alloc status -verbose: exit %d, lacks %q\n%s", code, w, stdout)
		}
	}
	code, stdout, _ = run(t, "alloc", "status", "-address", addr, "a1")
	if code != ExitOK || strings.Contains(stdout, "Placement Metrics") {
		t.Errorf("alloc status without -verbose: exit %d\n%s", code, stdout)
	}
	if code, _, _ := run(t, "alloc", "status", "-address", addr, "nope"); code != ExitError {
		t.Errorf("missing alloc: exit %d, want 1", code)
	}
}
