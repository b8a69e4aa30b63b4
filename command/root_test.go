package command

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// testTree is a command tree with the flag shapes the rewriting must handle,
// independent of the real commands.
func testTree() *cobra.Command {
	root := &cobra.Command{Use: "berth"}
	root.PersistentFlags().String("address", "", "")
	root.PersistentFlags().Bool("json", false, "")
	server := &cobra.Command{Use: "server", Run: func(*cobra.Command, []string) {}}
	server.Flags().String("data-dir", "", "")
	server.Flags().Int("http-port", 0, "")
	server.Flags().Int("bootstrap-expect", 0, "")
	server.Flags().StringArray("join", nil, "")
	server.Flags().Bool("dev", false, "")
	members := &cobra.Command{Use: "members", Run: func(*cobra.Command, []string) {}}
	server.AddCommand(members)
	job := &cobra.Command{Use: "job"}
	run := &cobra.Command{Use: "run", Run: func(*cobra.Command, []string) {}}
	run.Flags().StringArray("var", nil, "")
	run.Flags().Bool("detach", false, "")
	run.Flags().StringP("output", "o", "", "")
	stop := &cobra.Command{Use: "stop", Aliases: []string{"kill"}, Run: func(*cobra.Command, []string) {}}
	stop.Flags().Bool("purge", false, "")
	job.AddCommand(run, stop)
	root.AddCommand(server, job)
	return root
}

func TestRewriteArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{
			name: "server flags, Nomad style",
			in:   strings.Fields("server -data-dir D -http-port 4646 -bootstrap-expect 3 -join 127.0.0.1:4648"),
			want: strings.Fields("server --data-dir D --http-port 4646 --bootstrap-expect 3 --join 127.0.0.1:4648"),
		},
		{
			name: "inherited flag with =value",
			in:   strings.Fields("server members -address=http://127.0.0.1:4646"),
			want: strings.Fields("server members --address=http://127.0.0.1:4646"),
		},
		{
			name: "global flag before the command, with its value",
			in:   strings.Fields("-address http://127.0.0.1:4646 job stop -purge web"),
			want: strings.Fields("--address http://127.0.0.1:4646 job stop --purge web"),
		},
		{
			name: "a flag of the target given before the subcommand name",
			in:   strings.Fields("-purge job stop web"),
			want: strings.Fields("--purge job stop web"),
		},
		{
			name: "alias selects the command",
			in:   strings.Fields("job kill -purge web"),
			want: strings.Fields("job kill --purge web"),
		},
		{
			name: "double dash flags untouched",
			in:   strings.Fields("job run --detach --var a=1 job.hcl"),
			want: strings.Fields("job run --detach --var a=1 job.hcl"),
		},
		{
			name: "flag values are never rewritten, even when they look like flags",
			in:   strings.Fields("job run -var -detach job.hcl"),
			want: strings.Fields("job run --var -detach job.hcl"),
		},
		{
			name: "bool flags take no separate value",
			in:   strings.Fields("job run -detach -json job.hcl"),
			want: strings.Fields("job run --detach --json job.hcl"),
		},
		{
			name: "bool with explicit value",
			in:   strings.Fields("job run -detach=false job.hcl"),
			want: strings.Fields("job run --detach=false job.hcl"),
		},
		{
			name: "everything after -- is left alone",
			in:   strings.Fields("job run -detach -- -purge -var x"),
			want: strings.Fields("job run --detach -- -purge -var x"),
		},
		{
			name: "unknown single-dash flags are left for pflag to reject",
			in:   strings.Fields("job stop -bogus -purge web"),
			want: strings.Fields("job stop -bogus --purge web"),
		},
		{
			name: "a flag of another command is unknown here",
			in:   strings.Fields("job stop -detach web"),
			want: strings.Fields("job stop -detach web"),
		},
		{
			name: "shorthands, stdin and negative numbers are left alone",
			in:   strings.Fields("job run -h -o x - -5 -0.5"),
			want: strings.Fields("job run -h -o x - -5 -0.5"),
		},
		{
			name: "help is known everywhere",
			in:   strings.Fields("job run -help"),
			want: strings.Fields("job run --help"),
		},
		{
			name: "positional that is not a subcommand ends the walk",
			in:   strings.Fields("server members run -detach"),
			want: strings.Fields("server members run -detach"),
		},
		{
			name: "single dash long flag on a command with subcommands",
			in:   strings.Fields("server -dev -data-dir /tmp/x"),
			want: strings.Fields("server --dev --data-dir /tmp/x"),
		},
		{
			name: "completion requests keep the word being completed",
			in:   []string{"__complete", "job", "run", "-detach", "-de"},
			want: []string{"__complete", "job", "run", "--detach", "-de"},
		},
		{name: "empty", in: []string{}, want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := rewriteArgs(testTree(), tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rewriteArgs(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestRewriteArgsRealTree(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"operator raft list-peers -address http://127.0.0.1:4646", "operator raft list-peers --address http://127.0.0.1:4646"},
		{"operator raft remove-peer -peer-id abc", "operator raft remove-peer --peer-id abc"},
		{"operator raft transfer-leadership -peer-address=10.0.0.1:4647", "operator raft transfer-leadership --peer-address=10.0.0.1:4647"},
		{"job run -var a=1 -var-file v.hcl -detach web.hcl", "job run --var a=1 --var-file v.hcl --detach web.hcl"},
		{"job stop -purge -namespace prod web", "job stop --purge --namespace prod web"},
		{"job init -short", "job init --short"},
		{"-json -region eu status", "--json --region eu status"},
		{"node status -verbose", "node status --verbose"},
	}
	for _, tc := range tests {
		got := strings.Join(rewriteArgs(newRootCommand(), strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("rewriteArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// run executes the CLI in-process.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = execute(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// closedAddress is an HTTP address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	down := closedAddress(t)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no arguments prints help", nil, ExitOK},
		{"help flag", []string{"-help"}, ExitOK},
		{"group without subcommand prints help", []string{"job"}, ExitOK},
		{"subcommand help", []string{"operator", "raft", "list-peers", "-h"}, ExitOK},
		{"unknown command", []string{"frobnicate"}, ExitUsage},
		{"unknown subcommand", []string{"job", "frobnicate"}, ExitUsage},
		{"unknown nested subcommand", []string{"operator", "raft", "frobnicate"}, ExitUsage},
		{"unknown flag", []string{"job", "status", "-bogus"}, ExitUsage},
		{"missing argument", []string{"job", "run"}, ExitUsage},
		{"too many arguments", []string{"job", "status", "a", "b"}, ExitUsage},
		{"flag value of the wrong type", []string{"job", "run", "-detach=maybe", "x.json"}, ExitUsage},
		{"remove-peer needs one selector", []string{"operator", "raft", "remove-peer", "-address", down}, ExitUsage},
		{"remove-peer not both", []string{"operator", "raft", "remove-peer", "-peer-id", "a", "-peer-address", "b:1"}, ExitUsage},
		{"bad address", []string{"status", "-address", "ftp://x"}, ExitUsage},
		{"cluster unreachable", []string{"status", "-address", down}, ExitError},
		{"list-peers unreachable", []string{"operator", "raft", "list-peers", "-address", down}, ExitError},
		{"job status unreachable", []string{"job", "status", "-address", down}, ExitError},
		{"missing job file", []string{"job", "run", "-address", down, "/nonexistent/job.json"}, ExitError},
		{"completion", []string{"completion", "bash"}, ExitOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := run(t, tc.args...)
			if code != tc.want {
				t.Errorf("berth %q: exit %d, want %d; stderr:\n%s", tc.args, code, tc.want, stderr)
			}
			if code != ExitOK && !strings.Contains(stderr, "Error: ") {
				t.Errorf("berth %q: no error on stderr:\n%s", tc.args, stderr)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJobValidate(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "good.json", `{"Job":{"ID":"web","Name":"web","Type":"service","Datacenters":["dc1"],
		"TaskGroups":[{"Name":"g","Count":1,"Tasks":[{"Name":"t","Driver":"docker","Config":{"image":"nginx"}}]}]}}`)
	malformed := writeFile(t, "bad.json", `{"Job":`)

	code, stdout, stderr := run(t, "job", "validate", good)
	if code != ExitOK || !strings.Contains(stdout, "Job validation successful") {
		t.Errorf("valid job: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, _, stderr = run(t, "job", "validate", malformed)
	if code != ExitError || !strings.Contains(stderr, "Job validation failed") {
		t.Errorf("malformed job: exit %d\nstderr:\n%s", code, stderr)
	}
	code, stdout, _ = run(t, "-json", "job", "validate", malformed)
	if code != ExitError || !strings.Contains(stdout, `"Valid": false`) {
		t.Errorf("malformed job, -json: exit %d\nstdout:\n%s", code, stdout)
	}
}

func TestJobInit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "init", filepath.Join(dir, "long.nomad.hcl")}, exampleJob},
		{[]string{"job", "init", "-short", filepath.Join(dir, "short.nomad.hcl")}, exampleJobShort},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitOK {
			t.Fatalf("berth %q: exit %d: %s", tc.args, code, stderr)
		}
		b, err := os.ReadFile(tc.args[len(tc.args)-1])
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("berth %q wrote the wrong content", tc.args)
		}
		// Never overwrite.
		if code, _, _ := run(t, tc.args...); code != ExitError {
			t.Errorf("berth %q over an existing file: exit %d, want %d", tc.args, code, ExitError)
		}
	}
	if !strings.Contains(exampleJob, "#") || strings.Contains(exampleJobShort, "#") {
		t.Error("the long example should be commented and the short one not")
	}
}
