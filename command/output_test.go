package command

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{
			name:   "aligned columns",
			header: []string{"ID", "Type", "Status"},
			rows:   [][]string{{"web", "service", "running"}, {"nightly-backup", "batch", "dead"}},
			want: "" +
				"ID              Type     Status\n" +
				"web             service  running\n" +
				"nightly-backup  batch    dead\n",
		},
		{
			name:   "tabs and newlines in cells do not break the layout",
			header: []string{"A", "B"},
			rows:   [][]string{{"x\ty", "line1\nline2"}},
			want: "" +
				"A    B\n" +
				"x y  line1 line2\n",
		},
		{name: "header only", header: []string{"ID"}, want: "ID\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeTable(&b, tc.header, tc.rows); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got:\n%q\nwant:\n%q", b.String(), tc.want)
			}
		})
	}
}

func TestWriteKV(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := writeKV(&b, []kv{{"ID", "web"}, {"Submit Date", "<none>"}, {"Type", "service"}}); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID          = web\n" +
		"Submit Date = <none>\n" +
		"Type        = service\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestFormatAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{0, "0s ago"},
		{45 * time.Second, "45s ago"},
		{3*time.Minute + 12*time.Second, "3m12s ago"},
		{2*time.Hour + 5*time.Minute, "2h5m ago"},
		{76 * time.Hour, "3d4h ago"},
		{-time.Minute, "0s ago"}, // clock skew
	}
	for _, tc := range tests {
		if got := formatAge(now.Add(-tc.ago).UnixNano(), now); got != tc.want {
			t.Errorf("formatAge(-%v) = %q, want %q", tc.ago, got, tc.want)
		}
	}
	if got := formatAge(0, now); got != "<none>" {
		t.Errorf("formatAge(0) = %q", got)
	}
}

func TestJobStatusOutput(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	res := &jobStatusResult{
		Job: &structs.Job{ID: "web", Name: "web", Type: "service", Priority: 50, Datacenters: []string{"dc1", "dc2"},
			Namespace: "default", NodePool: "default", Status: "running", Version: 2},
		Summary: &structs.JobSummary{Summary: map[string]structs.TaskGroupSummary{"frontend": {Running: 2, Queued: 1}}},
		Allocations: []*structs.AllocListStub{{
			ID: "0123456789abcdef", NodeID: "fedcba9876543210", TaskGroup: "frontend", JobVersion: 2,
			DesiredStatus: "run", ClientStatus: "running",
			CreateTime: now.Add(-90 * time.Second).UnixNano(), ModifyTime: now.Add(-30 * time.Second).UnixNano(),
		}},
		Evaluations: []*structs.Evaluation{{ID: "aaaaaaaabbbbbbbb", Priority: 50, TriggeredBy: "job-register", Status: "complete"}},
	}
	var b bytes.Buffer
	if err := printJobStatus(&b, res, false, now); err != nil {
		t.Fatal(err)
	}
	want := `ID          = web
Name        = web
Submit Date = <none>
Type        = service
Priority    = 50
Datacenters = dc1,dc2
Namespace   = default
Node Pool   = default
Status      = running
Version     = 2

Summary
Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown
frontend    1       0         2        0       0         0     0

Allocations
ID        Node ID   Task Group  Version  Desired  Status   Created   Modified
01234567  fedcba98  frontend    2        run      running  1m30s ago  30s ago

Evaluations
ID        Priority  Triggered By  Status    Placement Failures
aaaaaaaa  50        job-register  complete  false
`
	// tabwriter pads every column to its widest cell; compare loosely on
	// whitespace runs so the expectation stays readable.
	if squash(b.String()) != squash(want) {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	// Full IDs with verbose.
	b.Reset()
	if err := printJobStatus(&b, res, true, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "0123456789abcdef") {
		t.Errorf("verbose output lacks full IDs:\n%s", b.String())
	}
}

func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func TestJobListTable(t *testing.T) {
	t.Parallel()
	jobs := []*structs.JobListStub{
		{ID: "web", Namespace: "prod", Type: "service", Priority: 50, Status: "running"},
		{ID: "old", Namespace: "default", Type: "batch", Priority: 10, Status: "running", Stop: true},
	}
	header, rows := jobListTable(jobs, false)
	if strings.Join(header, ",") != "ID,Type,Priority,Status,Submit Date" {
		t.Errorf("header = %q", header)
	}
	if rows[1][3] != "running (stopped)" {
		t.Errorf("stopped job status = %q", rows[1][3])
	}
	header, rows = jobListTable(jobs, true)
	if header[1] != "Namespace" || rows[0][1] != "prod" {
		t.Errorf("all-namespaces table: %q %q", header, rows[0])
	}
}

func TestRaftPeersAndMembersRows(t *testing.T) {
	t.Parallel()
	conf := &structs.RaftConfiguration{Servers: []*structs.RaftServer{
		{ID: "a", Node: "s1.global", Address: "10.0.0.1:4647", Leader: true, Voter: true, RaftProtocol: "3"},
		{ID: "b", Node: "s2.global", Address: "10.0.0.2:4647", Voter: true},
	}}
	var b bytes.Buffer
	if err := writeTable(&b, raftPeersHeader, raftPeersRows(conf)); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"Node       ID  Address        State     Voter  RaftProtocol\n" +
		"s1.global  a   10.0.0.1:4647  leader    true   3\n" +
		"s2.global  b   10.0.0.2:4647  follower  true   <none>\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	members := []*structs.AgentMember{
		{Name: "s1.global", Addr: "10.0.0.1", Port: 4648, Status: "alive", Tags: map[string]string{"port": "4647", "region": "global", "dc": "dc1", "build": "0.1.0"}},
		{Name: "s2.global", Addr: "10.0.0.2", Port: 4648, Status: "failed", Tags: map[string]string{"raft_addr": "10.0.0.2:4647"}},
	}
	rows := serverMembersRows(members, "10.0.0.1:4647")
	if rows[0][4] != "true" || rows[1][4] != "false" {
		t.Errorf("leader column: %q, %q", rows[0], rows[1])
	}
	if rows[0][7] != "dc1" || rows[0][8] != "global" || rows[1][7] != "<none>" {
		t.Errorf("tags: %q, %q", rows[0], rows[1])
	}
	if rows := serverMembersRows(members, "10.0.0.2:4647"); rows[1][4] != "true" {
		t.Errorf("raft_addr tag not used: %q", rows[1])
	}
}
