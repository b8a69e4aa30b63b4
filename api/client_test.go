package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/structs"
)

// recorded is what the canned server saw of one request.
type recorded struct {
	Method string
	Path   string // escaped path, as sent
	Query  url.Values
	Header http.Header
	Body   []byte
}

// assertRequest checks the method, escaped path and query of a request
// (a nil query means none).
func (rec recorded) assertRequest(t *testing.T, method, path string, query url.Values) {
	t.Helper()
	if rec.Method != method || rec.Path != path {
		t.Errorf("request = %s %s, want %s %s", rec.Method, rec.Path, method, path)
	}
	if query == nil {
		query = url.Values{}
	}
	if diff := cmp.Diff(query, rec.Query); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
}

// recorder holds the last request a canned server saw.
type recorder struct {
	mu   sync.Mutex
	last recorded
}

func (r *recorder) get() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// cannedServer answers every request with status, headers and body, and
// records the request.
func cannedServer(t *testing.T, status int, headers map[string]string, body string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.last = recorded{
			Method: r.Method,
			Path:   r.URL.EscapedPath(),
			Query:  r.URL.Query(),
			Header: r.Header.Clone(),
			Body:   b,
		}
		rec.mu.Unlock()
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(&Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func TestQueryOptionsOnTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       Config
		q         *QueryOptions
		wantQuery url.Values
		wantToken string
	}{
		{name: "none", q: nil, wantQuery: url.Values{}},
		{
			name:      "client defaults",
			cfg:       Config{Region: "eu", Namespace: "prod", Token: "secret"},
			wantQuery: url.Values{"region": {"eu"}, "namespace": {"prod"}},
			wantToken: "secret",
		},
		{
			name:      "options override client",
			cfg:       Config{Region: "eu", Namespace: "prod", Token: "secret"},
			q:         &QueryOptions{Region: "us", Namespace: "*", AuthToken: "other"},
			wantQuery: url.Values{"region": {"us"}, "namespace": {"*"}},
			wantToken: "other",
		},
		{
			name:      "stale, prefix and params",
			q:         &QueryOptions{AllowStale: true, Prefix: "web", Params: map[string]string{"filter": `Status == "running"`}},
			wantQuery: url.Values{"stale": {""}, "prefix": {"web"}, "filter": {`Status == "running"`}},
		},
		{
			name:      "blocking query",
			q:         &QueryOptions{WaitIndex: 42, WaitTime: 5 * time.Second},
			wantQuery: url.Values{"index": {"42"}, "wait": {"5000ms"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, recorder := cannedServer(t, 200, nil, `[]`)
			c.config.Region, c.config.Namespace, c.config.Token = tc.cfg.Region, tc.cfg.Namespace, tc.cfg.Token
			if _, _, err := c.Jobs().List(tc.q); err != nil {
				t.Fatal(err)
			}
			rec := recorder.get()
			if diff := cmp.Diff(tc.wantQuery, rec.Query); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if got := rec.Header.Get(HeaderToken); got != tc.wantToken {
				t.Errorf("token header = %q, want %q", got, tc.wantToken)
			}
		})
	}
}

func TestQueryMetaFromHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string]string
		want    QueryMeta
	}{
		{
			name:    "all set",
			headers: map[string]string{HeaderIndex: "1234", HeaderKnownLeader: "true", HeaderLastContact: "250"},
			want:    QueryMeta{LastIndex: 1234, KnownLeader: true, LastContact: 250 * time.Millisecond},
		},
		{
			name:    "no leader",
			headers: map[string]string{HeaderIndex: "7", HeaderKnownLeader: "false", HeaderLastContact: "0"},
			want:    QueryMeta{LastIndex: 7},
		},
		{name: "absent", headers: nil, want: QueryMeta{}},
		{
			name:    "garbage",
			headers: map[string]string{HeaderIndex: "x", HeaderKnownLeader: "yes", HeaderLastContact: "-3"},
			want:    QueryMeta{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := cannedServer(t, 200, tc.headers, `[]`)
			_, qm, err := c.Nodes().List(nil)
			if err != nil {
				t.Fatal(err)
			}
			got := *qm
			got.RequestTime = 0
			if got != tc.want {
				t.Errorf("QueryMeta = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestErrorTyping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status      int
		body        string
		wantMessage string
		notFound    bool
		badRequest  bool
		forbidden   bool
		conflict    bool
		serverError bool
	}{
		{status: 404, body: "job not found\n", wantMessage: "job not found", notFound: true},
		{status: 400, body: "1 error occurred:\n\t* missing job ID\n\n", wantMessage: "1 error occurred:\n\t* missing job ID", badRequest: true},
		{status: 403, body: "Permission denied", wantMessage: "Permission denied", forbidden: true},
		{status: 409, body: "conflict", wantMessage: "conflict", conflict: true},
		{status: 500, body: "No cluster leader", wantMessage: "No cluster leader", serverError: true},
		{status: 503, body: "", wantMessage: "", serverError: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			c, _ := cannedServer(t, tc.status, nil, tc.body)
			_, _, err := c.Jobs().Info("web", nil)
			if err == nil {
				t.Fatal("want an error")
			}
			// The typing survives wrapping by callers.
			wrapped := fmt.Errorf("get job: %w", err)
			var se *StatusError
			if !errors.As(wrapped, &se) {
				t.Fatalf("error %v (%T) is not a *StatusError", err, err)
			}
			if se.Code != tc.status || se.Message != tc.wantMessage {
				t.Errorf("StatusError = {%d %q}, want {%d %q}", se.Code, se.Message, tc.status, tc.wantMessage)
			}
			if se.Method != http.MethodGet || se.Path != "/v1/job/web" {
				t.Errorf("StatusError request = %s %s", se.Method, se.Path)
			}
			checks := []struct {
				name string
				got  bool
				want bool
			}{
				{"IsNotFound", IsNotFound(wrapped), tc.notFound},
				{"IsBadRequest", IsBadRequest(wrapped), tc.badRequest},
				{"IsForbidden", IsForbidden(wrapped), tc.forbidden},
				{"IsConflict", IsConflict(wrapped), tc.conflict},
				{"IsServerError", IsServerError(wrapped), tc.serverError},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
				}
			}
			if StatusCode(wrapped) != tc.status {
				t.Errorf("StatusCode = %d", StatusCode(wrapped))
			}
		})
	}
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()
	if got := (&StatusError{Code: 404, Message: "job not found"}).Error(); got != "job not found (HTTP 404)" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&StatusError{Code: 503}).Error(); got != "Service Unavailable (HTTP 503)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestNonStatusErrorsAreUntyped(t *testing.T) {
	t.Parallel()
	// A transport failure and a malformed body are not status errors.
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, err := NewClient(&Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status().Leader()
	if err == nil || StatusCode(err) != 0 || IsNotFound(err) {
		t.Errorf("connection refused: err = %v, StatusCode = %d", err, StatusCode(err))
	}

	c, _ = cannedServer(t, 200, nil, `{not json`)
	_, _, err = c.Jobs().Info("web", nil)
	if err == nil || StatusCode(err) != 0 {
		t.Errorf("malformed body: err = %v", err)
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		call       func(c *Client) (any, error)
		wantMethod string
		wantPath   string
		wantQuery  url.Values
		want       any
	}{
		{
			name:       "status leader",
			body:       `"10.0.0.1:4647"`,
			call:       func(c *Client) (any, error) { return c.Status().Leader() },
			wantMethod: "GET", wantPath: "/v1/status/leader",
			want: "10.0.0.1:4647",
		},
		{
			name:       "status peers",
			body:       `["10.0.0.1:4647","10.0.0.2:4647"]`,
			call:       func(c *Client) (any, error) { return c.Status().Peers() },
			wantMethod: "GET", wantPath: "/v1/status/peers",
			want: []string{"10.0.0.1:4647", "10.0.0.2:4647"},
		},
		{
			name:       "agent self",
			body:       `{"config":{"Region":"global"},"member":{"Name":"s1.global","Addr":"10.0.0.1","Port":4648,"Status":"alive"},"stats":{"raft":{"state":"Leader"}}}`,
			call:       func(c *Client) (any, error) { return c.Agent().Self() },
			wantMethod: "GET", wantPath: "/v1/agent/self",
			want: &structs.AgentSelf{
				Config: map[string]any{"Region": "global"},
				Member: structs.AgentMember{Name: "s1.global", Addr: "10.0.0.1", Port: 4648, Status: "alive"},
				Stats:  map[string]map[string]string{"raft": {"state": "Leader"}},
			},
		},
		{
			name:       "agent members",
			body:       `{"ServerName":"s1","ServerRegion":"global","ServerDC":"dc1","Members":[{"Name":"s1.global","Addr":"10.0.0.1","Port":4648,"Tags":{"role":"nomad"},"Status":"alive"}]}`,
			call:       func(c *Client) (any, error) { return c.Agent().Members() },
			wantMethod: "GET", wantPath: "/v1/agent/members",
			want: &structs.ServerMembers{ServerName: "s1", ServerRegion: "global", ServerDC: "dc1", Members: []*structs.AgentMember{
				{Name: "s1.global", Addr: "10.0.0.1", Port: 4648, Tags: map[string]string{"role": "nomad"}, Status: "alive"},
			}},
		},
		{
			name:       "agent health",
			body:       `{"server":{"ok":true,"message":"ok"}}`,
			call:       func(c *Client) (any, error) { return c.Agent().Health() },
			wantMethod: "GET", wantPath: "/v1/agent/health",
			want: &structs.AgentHealthResponse{Server: &structs.AgentHealth{Ok: true, Message: "ok"}},
		},
		{
			name: "raft configuration",
			body: `{"Index":9,"Servers":[{"ID":"a","Node":"s1.global","Address":"10.0.0.1:4647","Leader":true,"Voter":true,"RaftProtocol":"3"}]}`,
			call: func(c *Client) (any, error) {
				return c.Operator().RaftGetConfiguration(&QueryOptions{AllowStale: true})
			},
			wantMethod: "GET", wantPath: "/v1/operator/raft/configuration", wantQuery: url.Values{"stale": {""}},
			want: &structs.RaftConfiguration{Index: 9, Servers: []*structs.RaftServer{
				{ID: "a", Node: "s1.global", Address: "10.0.0.1:4647", Leader: true, Voter: true, RaftProtocol: "3"},
			}},
		},
		{
			name:       "raft remove peer by id",
			call:       func(c *Client) (any, error) { return nil, c.Operator().RaftRemovePeerByID("a", nil) },
			wantMethod: "DELETE", wantPath: "/v1/operator/raft/peer", wantQuery: url.Values{"id": {"a"}},
		},
		{
			name: "raft remove peer by address",
			call: func(c *Client) (any, error) {
				return nil, c.Operator().RaftRemovePeerByAddress("10.0.0.2:4647", nil)
			},
			wantMethod: "DELETE", wantPath: "/v1/operator/raft/peer", wantQuery: url.Values{"address": {"10.0.0.2:4647"}},
		},
		{
			name:       "raft transfer leadership by id",
			call:       func(c *Client) (any, error) { return nil, c.Operator().RaftTransferLeadershipByID("b", nil) },
			wantMethod: "PUT", wantPath: "/v1/operator/raft/transfer-leadership", wantQuery: url.Values{"id": {"b"}},
		},
		{
			name: "raft transfer leadership by address",
			call: func(c *Client) (any, error) {
				return nil, c.Operator().RaftTransferLeadershipByAddress("10.0.0.2:4647", nil)
			},
			wantMethod: "PUT", wantPath: "/v1/operator/raft/transfer-leadership", wantQuery: url.Values{"address": {"10.0.0.2:4647"}},
		},
		{
			name: "jobs list",
			body: `[{"ID":"web","Name":"web","Type":"service","Priority":50,"Status":"running"}]`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Jobs().List(&QueryOptions{Prefix: "we"})
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/jobs", wantQuery: url.Values{"prefix": {"we"}},
			want: []*structs.JobListStub{{ID: "web", Name: "web", Type: "service", Priority: 50, Status: "running"}},
		},
		{
			name: "job info escapes the ID",
			body: `{"ID":"team/web","Name":"web","Type":"service","Priority":50}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Jobs().Info("team/web", nil)
				if err != nil {
					return nil, err
				}
				return out.ID, nil
			},
			wantMethod: "GET", wantPath: "/v1/job/team%2Fweb",
			want: "team/web",
		},
		{
			name: "job deregister",
			body: `{"EvalID":"e1","EvalCreateIndex":10,"JobModifyIndex":10}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Jobs().Deregister("web", false, nil)
				return out, err
			},
			wantMethod: "DELETE", wantPath: "/v1/job/web",
			want: &structs.JobDeregisterResponse{EvalID: "e1", EvalCreateIndex: 10, JobModifyIndex: 10},
		},
		{
			name: "job deregister purge",
			body: `{"EvalID":"e1"}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Jobs().Deregister("web", true, &WriteOptions{Namespace: "prod"})
				return out.EvalID, err
			},
			wantMethod: "DELETE", wantPath: "/v1/job/web", wantQuery: url.Values{"purge": {"true"}, "namespace": {"prod"}},
			want: "e1",
		},
		{
			name: "job evaluations",
			body: `[{"ID":"e1","JobID":"web","Status":"complete"}]`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Jobs().Evaluations("web", nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/job/web/evaluations",
			want: []*structs.Evaluation{{ID: "e1", JobID: "web", Status: "complete"}},
		},
		{
			name: "job allocations",
			body: `[{"ID":"a1","JobID":"web","TaskGroup":"g","ClientStatus":"running"}]`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Jobs().Allocations("web", nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/job/web/allocations",
			want: []*structs.AllocListStub{{ID: "a1", JobID: "web", TaskGroup: "g", ClientStatus: "running"}},
		},
		{
			name: "job summary",
			body: `{"JobID":"web","Namespace":"default","Summary":{"g":{"Running":2}}}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Jobs().Summary("web", nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/job/web/summary",
			want: &structs.JobSummary{JobID: "web", Namespace: "default", Summary: map[string]structs.TaskGroupSummary{"g": {Running: 2}}},
		},
		{
			name: "evaluations list",
			body: `[{"ID":"e1"}]`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Evaluations().List(nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/evaluations",
			want: []*structs.Evaluation{{ID: "e1"}},
		},
		{
			name: "evaluation info",
			body: `{"ID":"e1","Status":"pending"}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Evaluations().Info("e1", nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/evaluation/e1",
			want: &structs.Evaluation{ID: "e1", Status: "pending"},
		},
		{
			name: "allocations list",
			body: `[{"ID":"a1"}]`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Allocations().List(&QueryOptions{Namespace: "*"})
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/allocations", wantQuery: url.Values{"namespace": {"*"}},
			want: []*structs.AllocListStub{{ID: "a1"}},
		},
		{
			name: "allocation info",
			body: `{"ID":"a1","TaskGroup":"g"}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Allocations().Info("a1", nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/allocation/a1",
			want: &structs.Allocation{ID: "a1", TaskGroup: "g"},
		},
		{
			name: "nodes list",
			body: `[{"ID":"n1","Name":"w1","Status":"ready"}]`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Nodes().List(nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/nodes",
			want: []*structs.NodeListStub{{ID: "n1", Name: "w1", Status: "ready"}},
		},
		{
			name: "node info",
			body: `{"ID":"n1","Name":"w1","Status":"ready"}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Nodes().Info("n1", nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/node/n1",
			want: &structs.Node{ID: "n1", Name: "w1", Status: "ready"},
		},
		{
			name: "namespaces list",
			body: `[{"Name":"default","Description":"Default shared namespace"}]`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Namespaces().List(nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/namespaces",
			want: []*structs.Namespace{{Name: "default", Description: "Default shared namespace"}},
		},
		{
			name: "namespace info",
			body: `{"Name":"prod"}`,
			call: func(c *Client) (any, error) {
				out, _, err := c.Namespaces().Info("prod", nil)
				return out, err
			},
			wantMethod: "GET", wantPath: "/v1/namespace/prod",
			want: &structs.Namespace{Name: "prod"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := tc.body
			if body == "" {
				body = "null"
			}
			c, recorder := cannedServer(t, 200, map[string]string{HeaderIndex: "5"}, body)
			got, err := tc.call(c)
			if err != nil {
				t.Fatal(err)
			}
			rec := recorder.get()
			rec.assertRequest(t, tc.wantMethod, tc.wantPath, tc.wantQuery)
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	c, recorder := cannedServer(t, 200, map[string]string{HeaderIndex: "17"},
		`{"EvalID":"e1","EvalCreateIndex":17,"JobModifyIndex":17,"Warnings":"","Index":17,"LastContact":0,"KnownLeader":true}`)
	job := &structs.Job{ID: "web", Name: "web", Type: "service", Namespace: "prod", Region: "eu"}
	resp, wm, err := c.Jobs().Register(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := recorder.get()
	if resp.EvalID != "e1" || resp.EvalCreateIndex != 17 || wm.LastIndex != 17 {
		t.Errorf("resp = %+v, meta = %+v", resp, wm)
	}
	if rec.Method != "PUT" || rec.Path != "/v1/jobs" {
		t.Errorf("request = %s %s", rec.Method, rec.Path)
	}
	// The job's namespace and region travel in the query and the body.
	if diff := cmp.Diff(url.Values{"namespace": {"prod"}, "region": {"eu"}}, rec.Query); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	if ct := rec.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body struct {
		Job       map[string]any
		Namespace string
		Region    string
	}
	if err := json.Unmarshal(rec.Body, &body); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if body.Job["ID"] != "web" || body.Namespace != "prod" || body.Region != "eu" {
		t.Errorf("body = %s", rec.Body)
	}

	// Explicit write options win over the job's.
	_, _, err = c.Jobs().RegisterOpts(job, &RegisterOptions{EnforceIndex: true, ModifyIndex: 3}, &WriteOptions{Namespace: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	rec = recorder.get()
	if got := rec.Query.Get("namespace"); got != "dev" {
		t.Errorf("namespace = %q, want dev", got)
	}
	if !strings.Contains(string(rec.Body), `"EnforceIndex":true`) || !strings.Contains(string(rec.Body), `"JobModifyIndex":3`) {
		t.Errorf("body = %s", rec.Body)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a slow server, as a blocking query is
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, `[]`)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(&Config{Address: srv.URL, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// A plain query is bounded by Timeout...
	if _, _, err := c.Jobs().List(nil); err == nil {
		t.Error("plain query outlived Timeout")
	}
	// ...a blocking query by its wait time on top of it.
	if _, _, err := c.Jobs().List(&QueryOptions{WaitIndex: 1, WaitTime: 2 * time.Second}); err != nil {
		t.Errorf("blocking query: %v", err)
	}
}

func TestDefaultConfigFromEnvironment(t *testing.T) {
	// Not parallel: t.Setenv.
	for _, k := range []string{EnvAddress, EnvNomadAddress, EnvToken, EnvNomadToken, EnvRegion, EnvNomadRegion, EnvNamespace, EnvNomadNamespace} {
		t.Setenv(k, "")
	}
	cfg := DefaultConfig()
	if cfg.Address != DefaultAddress || cfg.Token != "" || cfg.Timeout != DefaultTimeout {
		t.Errorf("empty environment: %+v", cfg)
	}

	t.Setenv(EnvNomadAddress, "http://nomad:4646")
	t.Setenv(EnvNomadToken, "nomad-token")
	t.Setenv(EnvNomadNamespace, "nomad-ns")
	cfg = DefaultConfig()
	if cfg.Address != "http://nomad:4646" || cfg.Token != "nomad-token" || cfg.Namespace != "nomad-ns" {
		t.Errorf("NOMAD_*: %+v", cfg)
	}

	t.Setenv(EnvAddress, "http://berth:4646")
	t.Setenv(EnvToken, "berth-token")
	t.Setenv(EnvRegion, "eu")
	cfg = DefaultConfig()
	if cfg.Address != "http://berth:4646" || cfg.Token != "berth-token" || cfg.Region != "eu" || cfg.Namespace != "nomad-ns" {
		t.Errorf("BERTH_* over NOMAD_*: %+v", cfg)
	}
}

func TestNewClientAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "http://127.0.0.1:4646", want: "http://127.0.0.1:4646"},
		{in: "http://127.0.0.1:4646/", want: "http://127.0.0.1:4646"},
		{in: "127.0.0.1:4646", want: "http://127.0.0.1:4646"},
		{in: "https://berth.example.com", want: "https://berth.example.com"},
		{in: "", want: DefaultAddress},
		{in: "ftp://x", wantErr: true},
		{in: "http://", wantErr: true},
	}
	for _, tc := range tests {
		c, err := NewClient(&Config{Address: tc.in})
		if tc.wantErr {
			if err == nil {
				t.Errorf("NewClient(%q): want an error, got %s", tc.in, c.Address())
			}
			continue
		}
		if err != nil {
			t.Errorf("NewClient(%q): %v", tc.in, err)
			continue
		}
		if got := c.Address(); got != tc.want {
			t.Errorf("NewClient(%q).Address() = %q, want %q", tc.in, got, tc.want)
		}
	}
}
