package jobspec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary job files to the parser, without the recover()
// that Parse adds as a last line of defence: nothing may panic. Crashers
// found are kept under testdata/fuzz/FuzzParse and rerun by go test.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.hcl", "testdata/*.json", "testdata/errors/*.hcl", filepath.Join(corpusDir, "*")} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`job "x" { group "g" { task "t" { driver = "exec" } } }`))
	f.Add([]byte(`{"Job": {"ID": "x"}}`))
	opts := Options{Env: []string{}}
	f.Fuzz(func(t *testing.T, src []byte) {
		job, _, err := parse("fuzz.hcl", src, opts)
		if err == nil && job == nil {
			t.Fatal("nil job without error")
		}
		if err != nil {
			_ = err.Error()
			return
		}
		_ = validate(job)
	})
}
