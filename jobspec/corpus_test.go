package jobspec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/structs"
)

// corpusDir holds real-world job files (see its README and SOURCES.tsv).
var corpusDir = filepath.Join("..", "..", "shared", "jobspec-corpus")

// corpusEnv is the environment the corpus is parsed with. Several files
// declare variables without defaults; their authors set them from outside
// (hashi-homelab from NOMAD_VAR_* in its CI, Nomad's e2e suite with -var).
// Values given for variables a file does not declare are ignored, as Nomad
// ignores them, so one environment serves every file.
var corpusEnv = []string{
	// hashicorp/nomad e2e/secret: path of a Vault secret
	"NOMAD_VAR_secret_path=secret/data/myapp",
	// hashicorp/nomad e2e/task_schedule: cron windows
	"NOMAD_VAR_start=0 9 * * *",
	"NOMAD_VAR_end=0 17 * * *",
	// hashicorp/nomad e2e/workload_id node-meta test
	"NOMAD_VAR_foo_key=foo",
	"NOMAD_VAR_empty_key=empty",
	"NOMAD_VAR_unset_key=unset",
	"NOMAD_VAR_foo_constraint=${meta.foo}",
	"NOMAD_VAR_empty_constraint=${meta.empty}",
	"NOMAD_VAR_unset_constraint=${meta.unset}",
	// perrymanuk/hashi-homelab
	"NOMAD_VAR_region=global",
	"NOMAD_VAR_tld=home.lab",
	"NOMAD_VAR_shared_dir=/mnt/shared/",
	"NOMAD_VAR_ssh_id=c3NoLWlk",
	"NOMAD_VAR_truenas_api_key=key",
	"NOMAD_VAR_truenas_iscsi_pass=pass",
	"NOMAD_VAR_gcp_project_id=project",
	"NOMAD_VAR_dns_zone=zone",
	"NOMAD_VAR_gcp_dns_admin=e30=",
	"NOMAD_VAR_hass_key=key",
	"NOMAD_VAR_hass_ip=192.168.1.10",
}

// corpusUnsupported lists files that berth rejects on purpose, with the
// text their error must contain (the feature berth does not support).
var corpusUnsupported = map[string]string{
	// Groups whose only task would be injected by a Consul Connect gateway.
	"hashicorp__nomad__e2e__connect__input__terminating-gateway.nomad":   "Unsupported feature: Consul Connect",
	"tristanmorgan__nomad-test__terraform__disabled_jobs__ingress.nomad": "Unsupported feature: Consul Connect",
}

// corpusInvalidForNomad lists files that Nomad itself rejects too, with the
// text berth's error must contain. They are left out of the acceptance rate.
var corpusInvalidForNomad = map[string]string{
	// A parser test fixture from Nomad's jobspec2 package: its task has no
	// driver and its template no destination, so `nomad job validate`
	// fails on it as well ("Missing task driver").
	"hashicorp__nomad__jobspec2__test-fixtures__template-wait-config.hcl": "missing driver",
}

// corpusValidatorDiscrepancies lists files that Nomad accepts but that
// structs.Job.Validate rejects: a difference to fix in structs, not in the
// parser. They count as rejected and are reported, without failing here.
var corpusValidatorDiscrepancies = map[string]string{
	// A task-level restart block (attempts 2, delay 15s, interval 10s) from
	// HashiCorp's getting-started tutorial. Nomad runs it: it checks
	// attempts*delay <= interval for the group's policy, not for a task's.
	"hashicorp-education__learn-nomad-getting-started__jobs__pytechco-employee.nomad.hcl": "cannot restart 2 times in an interval of 10s",
}

// companionVars are the -var values the needs-companion-files jobs are run
// with (their comments say so: `nomad job run -var config_file=...`); paths
// are relative to the job file.
var companionVars = map[string][]string{
	"angrycub__nomad_example_jobs__HCL2__variable_jobs__decode-external-file__job1.nomad": {"config_file=config.json"},
	"angrycub__nomad_example_jobs__connect__discuss__job.nomad":                           {"config_data=blocky.yml"},
	"hashicorp__nomad__demo__csi__kadalu-csi__controller.nomad":                           {"ssh_priv_path=id_rsa"},
}

// companionContent is what a missing companion file is created with.
var companionContent = map[string]string{
	"config.json": `{"datacenters": ["dc1"], "docker_image_job1": "redis:7"}`,
}

func locateCorpus(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("job file corpus missing at %s: %v", corpusDir, err)
		}
		t.Skipf("job file corpus not found at %s", corpusDir)
	}
	return corpusDir
}

func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "README.md" || e.Name() == "SOURCES.tsv" {
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	sort.Strings(files)
	return files
}

// validate runs job.Validate when structs provides it.
func validate(job *structs.Job) error {
	if v, ok := any(job).(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

func TestCorpus(t *testing.T) {
	dir := locateCorpus(t)
	files := corpusFiles(t, dir)
	accepted, invalid := 0, 0
	var failures []string
	for _, f := range files {
		name := filepath.Base(f)
		job, warns, err := ParseFile(f, Options{Env: corpusEnv})
		stage := "parse"
		if err == nil {
			stage = "validate"
			err = validate(job)
		}
		if err == nil {
			accepted++
			for _, w := range warns {
				t.Logf("%s: warning: %s", name, w)
			}
			continue
		}
		failures = append(failures, name+" ("+stage+"): "+err.Error())
		if want, ok := corpusInvalidForNomad[name]; ok && strings.Contains(err.Error(), want) {
			invalid++
			continue
		}
		if want, ok := corpusUnsupported[name]; ok && strings.Contains(err.Error(), want) {
			continue
		}
		if want, ok := corpusValidatorDiscrepancies[name]; ok && strings.Contains(err.Error(), want) {
			t.Logf("KNOWN DISCREPANCY (structs validation stricter than Nomad): %s: %v", name, err)
			continue
		}
		t.Errorf("%s: %s failed and names no unsupported feature:\n%v", name, stage, err)
	}
	// The jobs that need companion files count once those are in place.
	for _, f := range corpusFiles(t, filepath.Join(dir, "needs-companion-files")) {
		files = append(files, f)
		if err := runWithCompanions(t, f); err != nil {
			failures = append(failures, filepath.Base(f)+" (with companion files): "+err.Error())
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		accepted++
	}
	rate := float64(accepted) / float64(len(files)-invalid)
	t.Logf("corpus: %d of %d files accepted (%.1f%%); %d file(s) invalid for Nomad too left out", accepted, len(files)-invalid, 100*rate, invalid)
	for _, f := range failures {
		t.Logf("rejected: %s", f)
	}
	if rate < 0.95 {
		t.Errorf("corpus acceptance %.1f%% is below 95%%", 100*rate)
	}
}

// TestCorpusCompanionFiles checks the jobs that read files which are not in
// the corpus: each fails naming the missing path, and passes once the
// files are put beside it.
func TestCorpusCompanionFiles(t *testing.T) {
	dir := filepath.Join(locateCorpus(t), "needs-companion-files")
	for _, f := range corpusFiles(t, dir) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := runWithCompanions(t, f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// runWithCompanions parses f where it is, expecting "file not found" errors
// naming the missing paths, then again in a temporary copy of its directory
// with those files created, expecting it to parse and validate.
func runWithCompanions(t *testing.T, f string) error {
	t.Helper()
	name := filepath.Base(f)
	opts := Options{Env: corpusEnv, Vars: companionVars[name]}
	_, _, err := ParseFile(f, opts)
	if err == nil {
		return fmt.Errorf("parsed without its companion files")
	}
	missing := missingFiles(err)
	if len(missing) == 0 {
		return fmt.Errorf("error names no missing file:\n%v", err)
	}
	absDir, _ := filepath.Abs(filepath.Dir(f))
	tmp := t.TempDir()
	src, err := os.ReadFile(f)
	if err != nil {
		return err
	}
	job := filepath.Join(tmp, name)
	if err := os.WriteFile(job, src, 0o644); err != nil {
		return err
	}
	for _, m := range missing {
		rel, err := filepath.Rel(absDir, m)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("missing file %s is outside the job's directory", m)
		}
		p := filepath.Join(tmp, rel)
		content, ok := companionContent[filepath.Base(p)]
		if !ok {
			content = "placeholder for " + rel + "\n"
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	parsed, _, err := ParseFile(job, opts)
	if err == nil {
		err = validate(parsed)
	}
	if err != nil {
		return fmt.Errorf("with companion files in place: %w", err)
	}
	return nil
}

func missingFiles(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		_, after, ok := strings.Cut(line, "file not found: ")
		if !ok {
			continue
		}
		out = append(out, strings.TrimRight(after, "."))
	}
	return out
}
