package api

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/structs"
)

func TestClientNodeEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		call       func(c *Client) (any, error)
		wantMethod string
		wantPath   string
		wantQuery  url.Values
		wantSecret string
		wantBody   string // a JSON document the request body must equal
		want       any
	}{
		{
			name: "register",
			body: `{"HeartbeatTTL":10000000000,"Index":5,"Servers":["127.0.0.1:4646"]}`,
			call: func(c *Client) (any, error) {
				return c.ClientNodes().Register(&structs.Node{ID: "n1", SecretID: "s1", Name: "node-1"}, nil)
			},
			wantMethod: "PUT", wantPath: "/v1/client/node/register", wantSecret: "s1",
			want: &structs.NodeHeartbeatResponse{HeartbeatTTL: 10 * time.Second, Index: 5, Servers: []string{"127.0.0.1:4646"}},
		},
		{
			name:       "heartbeat",
			body:       `{"HeartbeatTTL":5000000000}`,
			call:       func(c *Client) (any, error) { return c.ClientNodes().Heartbeat("n/1", "s1", nil) },
			wantMethod: "PUT", wantPath: "/v1/client/node/n%2F1/heartbeat", wantSecret: "s1",
			want: &structs.NodeHeartbeatResponse{HeartbeatTTL: 5 * time.Second},
		},
		{
			name: "allocations, blocking",
			body: `[{"ID":"a1","NodeID":"n1","Job":{"ID":"web","Priority":50}}]`,
			call: func(c *Client) (any, error) {
				allocs, _, err := c.ClientNodes().Allocations("n1", "s1", &QueryOptions{WaitIndex: 7, WaitTime: time.Second})
				return allocs, err
			},
			wantMethod: "GET", wantPath: "/v1/client/node/n1/allocations", wantSecret: "s1",
			wantQuery: url.Values{"index": {"7"}, "wait": {"1000ms"}},
			want:      []*structs.Allocation{{ID: "a1", NodeID: "n1", Job: &structs.Job{ID: "web", Priority: 50}}},
		},
		{
			name: "allocations into a narrow type",
			body: `[{"ID":"a1","NodeID":"n1","DesiredStatus":"run","Job":{"ID":"web","TaskGroups":[{"Name":"g"}]}}]`,
			call: func(c *Client) (any, error) {
				var out []struct{ ID, DesiredStatus string }
				_, err := c.ClientNodes().AllocationsInto("n1", "s1", nil, &out)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/client/node/n1/allocations", wantSecret: "s1",
			want: []struct{ ID, DesiredStatus string }{{"a1", "run"}},
		},
		{
			name: "allocation stubs, blocking",
			body: `[{"ID":"a1","AllocModifyIndex":5,"ModifyIndex":9,"DesiredStatus":"run","ClientStatus":"running"}]`,
			call: func(c *Client) (any, error) {
				stubs, _, err := c.ClientNodes().AllocationStubs("n1", "s1", &QueryOptions{WaitIndex: 7, WaitTime: time.Second})
				return stubs, err
			},
			wantMethod: "GET", wantPath: "/v1/client/node/n1/allocations", wantSecret: "s1",
			wantQuery: url.Values{"index": {"7"}, "wait": {"1000ms"}, "stubs": {"true"}},
			want:      []ClientAllocStub{{ID: "a1", AllocModifyIndex: 5, ModifyIndex: 9, DesiredStatus: "run", ClientStatus: "running"}},
		},
		{
			name: "update allocations",
			body: `{"Index":12}`,
			call: func(c *Client) (any, error) {
				return c.ClientNodes().UpdateAllocations("s1", []*structs.Allocation{{ID: "a1", ClientStatus: "running"}}, nil)
			},
			wantMethod: "PUT", wantPath: "/v1/client/allocations/update", wantSecret: "s1",
			want: uint64(12),
		},
		{
			name: "job plan",
			body: `{"JobModifyIndex":9,"FailedTGAllocs":{"web":{"NodesEvaluated":3,"NodesExhausted":3,"DimensionExhausted":{"memory":3}}},"Annotations":{"DesiredTGUpdates":{"web":{"Place":2}}}}`,
			call: func(c *Client) (any, error) {
				resp, _, err := c.Jobs().Plan(&structs.Job{ID: "web", Namespace: "prod"}, true, nil)
				return resp, err
			},
			wantMethod: "PUT", wantPath: "/v1/job/web/plan", wantQuery: url.Values{"namespace": {"prod"}},
			want: &structs.JobPlanResponse{
				JobModifyIndex: 9,
				FailedTGAllocs: map[string]*structs.AllocMetric{"web": {NodesEvaluated: 3, NodesExhausted: 3, DimensionExhausted: map[string]int{"memory": 3}}},
				Annotations:    &structs.PlanAnnotations{DesiredTGUpdates: map[string]*structs.DesiredUpdates{"web": {Place: 2}}},
			},
		},
		{
			name: "job evaluate",
			body: `{"EvalID":"e1","EvalCreateIndex":4}`,
			call: func(c *Client) (any, error) {
				resp, _, err := c.Jobs().Evaluate("web", structs.EvalOptions{ForceReschedule: true}, nil)
				return resp, err
			},
			wantMethod: "PUT", wantPath: "/v1/job/web/evaluate",
			wantBody: `{"JobID":"web","EvalOptions":{"ForceReschedule":true}}`,
			want:     &structs.JobRegisterResponse{EvalID: "e1", EvalCreateIndex: 4},
		},
		{
			name: "scheduler get config, Nomad's wrapped form",
			body: `{"SchedulerConfig":{"SchedulerAlgorithm":"spread","PreemptionConfig":{"SystemSchedulerEnabled":true}},"Index":3}`,
			call: func(c *Client) (any, error) {
				cfg, _, err := c.Operator().SchedulerGetConfiguration(nil)
				return cfg, err
			},
			wantMethod: "GET", wantPath: "/v1/operator/scheduler/configuration",
			want: &structs.SchedulerConfiguration{SchedulerAlgorithm: "spread", PreemptionConfig: structs.PreemptionConfig{SystemSchedulerEnabled: true}},
		},
		{
			name: "scheduler get config, bare",
			body: `{"SchedulerAlgorithm":"binpack","ModifyIndex":8}`,
			call: func(c *Client) (any, error) {
				cfg, _, err := c.Operator().SchedulerGetConfiguration(nil)
				return cfg, err
			},
			wantMethod: "GET", wantPath: "/v1/operator/scheduler/configuration",
			want: &structs.SchedulerConfiguration{SchedulerAlgorithm: "binpack", ModifyIndex: 8},
		},
		{
			name: "scheduler set config",
			body: `{"Updated":true,"Index":11}`,
			call: func(c *Client) (any, error) {
				resp, _, err := c.Operator().SchedulerSetConfiguration(&structs.SchedulerConfiguration{SchedulerAlgorithm: "spread"}, nil)
				return resp, err
			},
			wantMethod: "PUT", wantPath: "/v1/operator/scheduler/configuration",
			want: &SchedulerSetConfigurationResponse{Updated: true, Index: 11},
		},
		{
			name: "scheduler cas config",
			body: `{"Updated":false}`,
			call: func(c *Client) (any, error) {
				resp, _, err := c.Operator().SchedulerCASConfiguration(&structs.SchedulerConfiguration{ModifyIndex: 6}, nil)
				return resp, err
			},
			wantMethod: "PUT", wantPath: "/v1/operator/scheduler/configuration", wantQuery: url.Values{"cas": {"6"}},
			want: &SchedulerSetConfigurationResponse{},
		},
		{
			name: "node eligibility",
			body: `{"EvalIDs":["e1"],"NodeModifyIndex":5}`,
			call: func(c *Client) (any, error) {
				resp, _, err := c.Nodes().ToggleEligibility("n1", false, nil)
				return resp, err
			},
			wantMethod: "PUT", wantPath: "/v1/node/n1/eligibility",
			wantBody: `{"NodeID":"n1","Eligibility":"ineligible"}`,
			want:     &NodeEligibilityUpdateResponse{EvalIDs: []string{"e1"}, NodeModifyIndex: 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, recorder := cannedServer(t, 200, nil, tc.body)
			got, err := tc.call(c)
			if err != nil {
				t.Fatal(err)
			}
			rec := recorder.get()
			rec.assertRequest(t, tc.wantMethod, tc.wantPath, tc.wantQuery)
			if s := rec.Header.Get(HeaderNodeSecret); s != tc.wantSecret {
				t.Errorf("%s = %q, want %q", HeaderNodeSecret, s, tc.wantSecret)
			}
			if tc.wantBody != "" {
				var gotBody, wantBody any
				if err := json.Unmarshal(rec.Body, &gotBody); err != nil {
					t.Fatalf("body %s: %v", rec.Body, err)
				}
				_ = json.Unmarshal([]byte(tc.wantBody), &wantBody)
				if diff := cmp.Diff(wantBody, gotBody); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientNodeErrorsAreTyped(t *testing.T) {
	t.Parallel()
	c, _ := cannedServer(t, 403, nil, "node secret does not match\n")
	_, err := c.ClientNodes().Heartbeat("n1", "wrong", nil)
	if !IsForbidden(err) {
		t.Fatalf("err = %v, want a 403 StatusError", err)
	}
	if se := err.(*StatusError); se.Message != "node secret does not match" {
		t.Errorf("message = %q", se.Message)
	}
}

func TestRegisterCheckIndex(t *testing.T) {
	t.Parallel()
	c, recorder := cannedServer(t, 409, nil, "conflict: enforcing job modify index 3: job exists with index 5")
	_, _, err := c.Jobs().RegisterCheckIndex(&structs.Job{ID: "web"}, 3, nil)
	if !IsConflict(err) {
		t.Fatalf("err = %v, want a conflict", err)
	}
	var body structs.JobRegisterRequest
	if err := json.Unmarshal(recorder.get().Body, &body); err != nil {
		t.Fatal(err)
	}
	if !body.EnforceIndex || body.JobModifyIndex != 3 {
		t.Errorf("body = %+v", body)
	}
}
