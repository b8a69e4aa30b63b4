package jobspec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenOptions are the inputs the golden job files are parsed with.
var goldenOptions = Options{
	Env: []string{"NOMAD_VAR_image=redis:7", "NOMAD_VAR_replicas=3", "BERTH_VAR_datacenters=[\"east\", \"west\"]", "NOMAD_VAR_datacenters=[\"ignored\"]"},
}

func goldenInputs(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files match testdata/%s", pattern)
	}
	return files
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./jobspec -run %s -update)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); rerun with -update if intended:\n%s", path, diff)
	}
}

func jobJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGolden compares each parsed job file's JSON with its golden file.
func TestGolden(t *testing.T) {
	inputs := append(goldenInputs(t, "*.hcl"), goldenInputs(t, "*.json")...)
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			job, warns, err := ParseFile(in, goldenOptions)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(job); err != nil {
				t.Errorf("validate: %v", err)
			}
			for _, w := range warns {
				t.Logf("warning: %s", w)
			}
			out := jobJSON(t, job)
			if strings.Contains(string(out), "uuid") {
				t.Log("note: golden files must not depend on uuidv4/timestamps")
			}
			checkGolden(t, strings.TrimSuffix(in, filepath.Ext(in))+".golden.json", out)
		})
	}
}

// TestRoundTrip: HCL -> Job -> JSON -> Job is stable.
func TestRoundTrip(t *testing.T) {
	for _, in := range goldenInputs(t, "*.hcl") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			job, _, err := ParseFile(in, goldenOptions)
			if err != nil {
				t.Fatal(err)
			}
			first := jobJSON(t, job)
			for _, wrapped := range []bool{false, true} {
				src := first
				if wrapped {
					src = jobJSON(t, map[string]any{"Job": job})
				}
				again, _, err := Parse(in+".json", src, Options{})
				if err != nil {
					t.Fatalf("re-parse JSON (wrapped=%v): %v", wrapped, err)
				}
				if diff := cmp.Diff(string(first), string(jobJSON(t, again))); diff != "" {
					t.Errorf("round trip (wrapped=%v) changed the job (-hcl +json):\n%s", wrapped, diff)
				}
			}
		})
	}
}

// TestErrorsGolden checks the messages for invalid files: every problem,
// with file:line:col, at once.
func TestErrorsGolden(t *testing.T) {
	for _, in := range goldenInputs(t, filepath.Join("errors", "*.hcl")) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			_, _, err := ParseFile(in, Options{Env: []string{}})
			if err == nil {
				t.Fatal("expected an error")
			}
			var perr *Error
			if !asError(err, &perr) {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			for _, d := range perr.Diagnostics {
				if d.Subject == nil {
					t.Errorf("diagnostic without position: %s", d.Summary)
				}
			}
			msg := err.Error()
			if wd, err := os.Getwd(); err == nil {
				msg = strings.ReplaceAll(msg, wd, "$PWD")
			}
			checkGolden(t, strings.TrimSuffix(in, ".hcl")+".golden.txt", []byte(msg+"\n"))
		})
	}
}
