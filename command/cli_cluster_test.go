package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

func TestCLIAgainstRealCluster(t *testing.T) {
	c := servertest.NewCluster(t, 1)
	addr := c.HTTPAddrs()[0]
	dir := t.TempDir()

	// job init writes a job that validates and runs
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "job", "init"); code != ExitOK {
		t.Fatalf("job init: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, "job", "validate", "example.nomad.hcl"); code != ExitOK {
		t.Fatalf("job validate: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := run(t, "job", "run", "-address", addr, "-detach", "example.nomad.hcl")
	if code != ExitOK {
		t.Fatalf("job run: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "Evaluation ID") {
		t.Errorf("job run output has no evaluation ID:\n%s", stdout)
	}

	// -json output is machine readable and names the job
	code, stdout, stderr = run(t, "job", "status", "-json", "-address", addr)
	if code != ExitOK {
		t.Fatalf("job status: exit %d: %s", code, stderr)
	}
	var stubs []*structs.JobListStub
	if err := json.Unmarshal([]byte(stdout), &stubs); err != nil {
		t.Fatalf("job status -json is not JSON: %v\n%s", err, stdout)
	}
	if len(stubs) != 1 {
		t.Fatalf("want 1 job, got %d", len(stubs))
	}
	jobID := stubs[0].ID

	// a JSON job file works too, and a bad one fails with exit code 1
	jsonJob := filepath.Join(dir, "batch.json")
	os.WriteFile(jsonJob, []byte(`{"Job":{"ID":"b","Type":"batch","TaskGroups":[{"Name":"g","Tasks":[{"Name":"t","Driver":"exec","Config":{"command":"/bin/true"}}]}]}}`), 0o644)
	if code, _, stderr := run(t, "job", "run", "-detach", "--address="+addr, jsonJob); code != ExitOK {
		t.Fatalf("job run json: exit %d: %s", code, stderr)
	}
	badJob := filepath.Join(dir, "bad.json")
	os.WriteFile(badJob, []byte(`{"Job":{"ID":"x","Type":"nope","TaskGroups":[]}}`), 0o644)
	if code, _, stderr := run(t, "job", "run", "-address", addr, badJob); code != ExitError {
		t.Errorf("invalid job: want exit %d, got %d (%s)", ExitError, code, stderr)
	}

	if code, stdout, _ := run(t, "operator", "raft", "list-peers", "-address", addr); code != ExitOK || !strings.Contains(stdout, "leader") {
		t.Errorf("list-peers: exit %d:\n%s", code, stdout)
	}
	if code, stdout, _ := run(t, "server", "members", "-address", addr); code != ExitOK || !strings.Contains(stdout, "alive") {
		t.Errorf("server members: exit %d:\n%s", code, stdout)
	}

	// stop, then purge; a missing job is an error, a bad flag a usage error
	if code, _, stderr := run(t, "job", "stop", "-detach", "-address", addr, jobID); code != ExitOK {
		t.Fatalf("job stop: exit %d: %s", code, stderr)
	}
	job, _ := c.Server(0).State().JobByID(nil, structs.DefaultNamespace, jobID)
	if job == nil || !job.Stop {
		t.Fatalf("job not stopped: %+v", job)
	}
	if code, _, stderr := run(t, "job", "stop", "-purge", "-detach", "-address", addr, jobID); code != ExitOK {
		t.Fatalf("job stop -purge: exit %d: %s", code, stderr)
	}
	if code, _, _ := run(t, "job", "status", "-address", addr, jobID); code != ExitError {
		t.Errorf("status of purged job: want exit %d, got %d", ExitError, code)
	}
	if code, _, _ := run(t, "job", "status", "-no-such-flag"); code != ExitUsage {
		t.Errorf("unknown flag: want exit %d, got %d", ExitUsage, code)
	}
}
