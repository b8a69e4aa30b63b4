package template

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/structs"
)

func testEnv() *taskenv.Env {
	task := &structs.Task{Name: "web", Env: map[string]string{"GREETING": "hello"}}
	alloc := &structs.Allocation{ID: "alloc-1234567890"}
	return taskenv.NewBuilder(&structs.Node{ID: "n1"}, alloc, task, "global").
		SetDirs("/alloc", "/local", "/secrets").Build()
}

func taskDir(t *testing.T) string {
	d := t.TempDir()
	for _, sub := range []string{"local", "secrets"} {
		if err := os.Mkdir(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestRenderEmbeddedChangedAndPerms(t *testing.T) {
	dir := taskDir(t)
	tmpl := &structs.Template{
		EmbeddedTmpl: `{{ env "GREETING" | toUpper }} {{ env "NOMAD_ALLOC_ID" }} {{ join "," (split ":" "a:b:c") }} {{ "aGk=" | base64Decode }} {{ parseInt " 42 " }}`,
		DestPath:     "local/out.txt",
		Perms:        "0600",
	}
	changed, err := Render(tmpl, dir, testEnv())
	if err != nil || !changed {
		t.Fatalf("first render: changed=%v err=%v", changed, err)
	}
	dest := filepath.Join(dir, "local", "out.txt")
	data, _ := os.ReadFile(dest)
	if string(data) != "HELLO alloc-1234567890 a,b,c hi 42" {
		t.Fatalf("rendered %q", data)
	}
	fi, _ := os.Stat(dest)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	before := fi.ModTime()
	changed, err = Render(tmpl, dir, testEnv())
	if err != nil || changed {
		t.Fatalf("second render: changed=%v err=%v", changed, err)
	}
	if fi2, _ := os.Stat(dest); !fi2.ModTime().Equal(before) {
		t.Fatal("unchanged file was rewritten")
	}
	tmpl.EmbeddedTmpl = "different"
	if changed, err := Render(tmpl, dir, testEnv()); err != nil || !changed {
		t.Fatalf("third render: changed=%v err=%v", changed, err)
	}
}

func TestRenderSourceFileDelimsAndFileFunc(t *testing.T) {
	dir := taskDir(t)
	os.WriteFile(filepath.Join(dir, "local", "in.tpl"), []byte(`[[ env "GREETING" ]] [[ file "local/data.txt" | trimSpace ]] {{ untouched }}`), 0o644)
	os.WriteFile(filepath.Join(dir, "local", "data.txt"), []byte("  from file\n"), 0o644)
	tmpl := &structs.Template{SourcePath: "local/in.tpl", DestPath: "/secrets/out", LeftDelim: "[[", RightDelim: "]]"}
	if _, err := Render(tmpl, dir, testEnv()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "secrets", "out"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "hello from file {{ untouched }}" {
		t.Fatalf("rendered %q", data)
	}
	fi, _ := os.Stat(filepath.Join(dir, "secrets", "out"))
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("default perms: %v", fi.Mode())
	}
}

func TestRenderInterpolatedHostPathDest(t *testing.T) {
	dir := taskDir(t)
	env := taskenv.NewBuilder(nil, nil, &structs.Task{Name: "web"}, "").
		SetDirs(filepath.Join(dir, "..", "alloc"), filepath.Join(dir, "local"), filepath.Join(dir, "secrets")).Build()
	tmpl := &structs.Template{EmbeddedTmpl: "x", DestPath: "${NOMAD_SECRETS_DIR}/token"}
	if _, err := Render(tmpl, dir, env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets", "token")); err != nil {
		t.Fatal(err)
	}
}

func TestRenderRejectsEscapes(t *testing.T) {
	dir := taskDir(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s3cret"), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "local", "link"))
	cases := []*structs.Template{
		{EmbeddedTmpl: "x", DestPath: "../escape"},
		{EmbeddedTmpl: "x", DestPath: "local/../../escape"},
		{EmbeddedTmpl: "x", DestPath: ""},
		{SourcePath: "../../etc/passwd", DestPath: "local/x"},
		{SourcePath: "local/link", DestPath: "local/x"},
	}
	for i, c := range cases {
		if _, err := Render(c, dir, testEnv()); err == nil {
			t.Errorf("case %d: rendered %+v", i, c)
		}
	}
	_, err := Render(&structs.Template{EmbeddedTmpl: `{{ file "local/link" }}`, DestPath: "local/x"}, dir, testEnv())
	if !errors.Is(err, ErrOutsideTaskDir) {
		t.Errorf("file func through symlink: %v", err)
	}
	os.Symlink(outside, filepath.Join(dir, "local", "linkdir"))
	_, err = Render(&structs.Template{EmbeddedTmpl: "x", DestPath: "local/linkdir/new/file"}, dir, testEnv())
	if !errors.Is(err, ErrOutsideTaskDir) {
		t.Errorf("dest through symlinked dir: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("wrote outside: %v", entries)
	}
	if _, err := Render(&structs.Template{EmbeddedTmpl: "x", DestPath: "local/x", Perms: "999"}, dir, testEnv()); err == nil {
		t.Error("accepted perms 999")
	}
}

func TestUnsupportedAndMissingKey(t *testing.T) {
	dir := taskDir(t)
	_, err := Render(&structs.Template{EmbeddedTmpl: `{{ key "foo" }}`, DestPath: "local/x"}, dir, testEnv())
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("key: %v", err)
	}
	_, err = Render(&structs.Template{EmbeddedTmpl: `{{ range nomadVar "a/b" }}{{ end }}`, DestPath: "local/x"}, dir, testEnv())
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("nomadVar: %v", err)
	}
	out, err := Execute(&structs.Template{EmbeddedTmpl: `[{{ env "NOPE" }}]`, DestPath: "local/x"}, dir, testEnv())
	if err != nil || string(out) != "[]" {
		t.Errorf("missing env without ErrMissingKey: %q %v", out, err)
	}
	_, err = Execute(&structs.Template{EmbeddedTmpl: `[{{ env "NOPE" }}]`, DestPath: "local/x", ErrMissingKey: true}, dir, testEnv())
	if !errors.Is(err, ErrMissingEnv) {
		t.Errorf("missing env with ErrMissingKey: %v", err)
	}
}

func TestEnvvarsTemplateRoundTrip(t *testing.T) {
	dir := taskDir(t)
	out, err := Execute(&structs.Template{EmbeddedTmpl: "A={{ env \"GREETING\" }}\n# comment\nexport B=\"two words\\n\"\nC='lit $x'\nD=plain # trailing\n", DestPath: "secrets/env", Envvars: true}, dir, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "hello", "B": "two words\n", "C": "lit $x", "D": "plain"}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("got %q", env)
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	for _, in := range []string{"NOEQUALS", "1BAD=x", "A=\"open", "A='open", "A=\"x\" junk", "=v"} {
		if _, err := ParseEnvFile([]byte(in)); !errors.Is(err, ErrEnvFile) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func FuzzParseEnvFile(f *testing.F) {
	for _, seed := range []string{"A=1\nB=2", "export X=\"a\\nb\"", "C='x'", "# c\n\nD=e # f", "bad", "A=\"", "\x00=\x00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvFile(data)
		if err != nil {
			if !errors.Is(err, ErrEnvFile) {
				t.Fatalf("error not wrapping ErrEnvFile: %v", err)
			}
			return
		}
		for k := range env {
			if !validKey(k) {
				t.Fatalf("invalid key %q accepted", k)
			}
		}
	})
}
