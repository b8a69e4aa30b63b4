package template

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

// writeOld writes a file with an mtime well in the past, so that its
// stamp is trusted (outside racyWindow).
func writeOld(t *testing.T, path, content string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestRenderTrackedRecordsSourceAndFileFunc(t *testing.T) {
	dir := taskDir(t)
	src := filepath.Join(dir, "local", "in.tpl")
	data := filepath.Join(dir, "local", "data.txt")
	writeOld(t, src, `{{ file "local/data.txt" }}-{{ file "local/data.txt" }}`, time.Hour)
	writeOld(t, data, "v1", time.Hour)
	tmpl := &structs.Template{SourcePath: "local/in.tpl", DestPath: "local/out"}
	changed, deps, err := RenderTracked(tmpl, dir, testEnv())
	if err != nil || !changed {
		t.Fatalf("render: changed=%v err=%v", changed, err)
	}
	want := []string{data, src}
	slices.Sort(want)
	if got := deps.Files(); !slices.Equal(got, want) {
		t.Fatalf("deps %v, want %v", got, want)
	}
	if deps.Changed() {
		t.Fatal("deps changed right after the render, nothing was touched")
	}
	// same size, different content, newer (but still old) mtime
	writeOld(t, data, "v2", 30*time.Minute)
	if !deps.Changed() {
		t.Fatal("rewritten file not noticed")
	}
	changed, deps, err = RenderTracked(tmpl, dir, testEnv())
	if err != nil || !changed {
		t.Fatalf("re-render: changed=%v err=%v", changed, err)
	}
	if out, _ := os.ReadFile(filepath.Join(dir, "local", "out")); string(out) != "v2-v2" {
		t.Fatalf("rendered %q", out)
	}
	if deps.Changed() {
		t.Fatal("fresh deps report a change")
	}
	// the source itself changing is a change too
	writeOld(t, src, `{{ file "local/data.txt" }}!`, 20*time.Minute)
	if !deps.Changed() {
		t.Fatal("changed source not noticed")
	}
}

func TestDepsTrackMissingFile(t *testing.T) {
	dir := taskDir(t)
	tmpl := &structs.Template{EmbeddedTmpl: `{{ file "local/later" }}`, DestPath: "local/out"}
	_, deps, err := RenderTracked(tmpl, dir, testEnv())
	if err == nil {
		t.Fatal("render of a missing file succeeded")
	}
	if got := deps.Files(); len(got) != 1 || got[0] != filepath.Join(dir, "local", "later") {
		t.Fatalf("deps of a failed render %v, want the missing file", got)
	}
	if deps.Changed() {
		t.Fatal("still missing, but reported changed")
	}
	writeOld(t, filepath.Join(dir, "local", "later"), "here", time.Hour)
	if !deps.Changed() {
		t.Fatal("file appearing not noticed")
	}
}

func TestDepsRacyRecentFileCountsAsChanged(t *testing.T) {
	dir := taskDir(t)
	// written just now: the stamp cannot be trusted yet
	if err := os.WriteFile(filepath.Join(dir, "local", "d"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, deps, err := ExecuteTracked(&structs.Template{EmbeddedTmpl: `{{ file "local/d" }}`, DestPath: "local/out"}, dir, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !deps.Changed() {
		t.Fatal("a file modified within the racy window must be re-rendered")
	}
}

func TestDepsEmptyForPureTemplate(t *testing.T) {
	dir := taskDir(t)
	_, deps, err := RenderTracked(&structs.Template{EmbeddedTmpl: `{{ env "GREETING" }}`, DestPath: "local/out"}, dir, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !deps.Empty() || deps.Changed() {
		t.Fatalf("pure template has deps %v", deps.Files())
	}
}
