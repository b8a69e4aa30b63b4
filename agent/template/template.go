// Package template renders a task's template blocks with Go's
// text/template, the engine consul-template is built on, with the pure
// helper functions job files commonly use. Functions that need Consul,
// Vault or Nomad variables are present but fail with ErrNotSupported, so a
// template that uses them fails clearly instead of rendering wrong.
//
// RenderTracked and ExecuteTracked also return the render's Deps: the
// files it read (its source, files read with the file function), each
// stamped before it was read, which the agent polls to re-render a
// running task's templates when one changes.
package template

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/structs"
)

// ErrNotSupported is wrapped by functions berth does not provide yet.
var ErrNotSupported = errors.New("template function not supported yet")

// ErrOutsideTaskDir is returned for a source or destination that leaves
// the task directory.
var ErrOutsideTaskDir = errors.New("path escapes the task directory")

// ErrMissingEnv is returned when ErrMissingKey is set and a template reads
// an environment variable that does not exist.
var ErrMissingEnv = errors.New("missing environment variable")

// maxTemplateSize bounds what a source file or an output may be.
const maxTemplateSize = 16 << 20

// Render renders t into its destination inside taskDir and reports whether
// the file changed. The file is only rewritten (atomically) when its
// content differs; its mode is set to t.Perms either way.
func Render(t *structs.Template, taskDir string, env *taskenv.Env) (changed bool, err error) {
	changed, _, err = RenderTracked(t, taskDir, env)
	return changed, err
}

// RenderTracked is Render that also returns the files the render read
// (Deps), to be polled for changes. Deps are returned on error too: they
// hold what was read (or found missing) up to the failure.
func RenderTracked(t *structs.Template, taskDir string, env *taskenv.Env) (changed bool, deps Deps, err error) {
	out, deps, err := ExecuteTracked(t, taskDir, env)
	if err != nil {
		return false, deps, err
	}
	dest, err := resolve(taskDir, env, t.DestPath)
	if err != nil {
		return false, deps, fmt.Errorf("template destination: %w", err)
	}
	if err := checkParentInside(taskDir, dest); err != nil {
		return false, deps, fmt.Errorf("template destination: %w", err)
	}
	perms := structs.DefaultTemplatePerms
	if t.Perms != "" {
		perms = t.Perms
	}
	mode, err := strconv.ParseUint(perms, 8, 32)
	if err != nil || mode > 0o7777 {
		return false, deps, fmt.Errorf("template perms %q: not an octal mode", perms)
	}
	changed, err = writeIfChanged(dest, out, fs.FileMode(mode), t.Uid, t.Gid)
	return changed, deps, err
}

// Destination returns where t renders to on the host: its destination,
// interpolated and placed inside taskDir.
func Destination(t *structs.Template, taskDir string, env *taskenv.Env) (string, error) {
	dest, err := resolve(taskDir, env, t.DestPath)
	if err != nil {
		return "", fmt.Errorf("template destination: %w", err)
	}
	return dest, nil
}

// Execute renders t and returns the output without writing it.
func Execute(t *structs.Template, taskDir string, env *taskenv.Env) ([]byte, error) {
	out, _, err := ExecuteTracked(t, taskDir, env)
	return out, err
}

// ExecuteTracked is Execute that also returns the files the render read.
func ExecuteTracked(t *structs.Template, taskDir string, env *taskenv.Env) ([]byte, Deps, error) {
	tr := newTracker()
	out, err := execute(t, taskDir, env, tr)
	return out, tr.deps(), err
}

func execute(t *structs.Template, taskDir string, env *taskenv.Env, tr *tracker) ([]byte, error) {
	src := t.EmbeddedTmpl
	if t.SourcePath != "" {
		path, err := resolve(taskDir, env, t.SourcePath)
		if err != nil {
			return nil, fmt.Errorf("template source: %w", err)
		}
		data, err := tr.readInside(taskDir, path)
		if err != nil {
			return nil, fmt.Errorf("template source: %w", err)
		}
		src = string(data)
	}
	tmpl := template.New(t.DestPath).Funcs(funcs(taskDir, env, t.ErrMissingKey, tr))
	left, right := t.LeftDelim, t.RightDelim
	if left == "" {
		left = "{{"
	}
	if right == "" {
		right = "}}"
	}
	tmpl = tmpl.Delims(left, right)
	if t.ErrMissingKey {
		tmpl = tmpl.Option("missingkey=error")
	}
	parsed, err := tmpl.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", t.DestPath, err)
	}
	var buf bytes.Buffer
	if err := parsed.Execute(&limitedBuffer{buf: &buf, max: maxTemplateSize}, nil); err != nil {
		return nil, fmt.Errorf("render template %s: %w", t.DestPath, err)
	}
	return buf.Bytes(), nil
}

// resolve interpolates p and places it inside taskDir. An absolute path
// already under taskDir (raw_exec sees host paths) is taken as is; any
// other absolute path is as the task sees it ("/local/x") and so relative
// to taskDir. The result must stay inside taskDir.
func resolve(taskDir string, env *taskenv.Env, p string) (string, error) {
	if env != nil {
		p = env.ReplaceEnv(p)
	}
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	root := filepath.Clean(taskDir)
	var full string
	if filepath.IsAbs(p) && within(root, filepath.Clean(p)) {
		full = filepath.Clean(p)
	} else {
		full = filepath.Join(root, p)
	}
	if !within(root, full) || full == root {
		return "", fmt.Errorf("%w: %q", ErrOutsideTaskDir, p)
	}
	return full, nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// checkNoSymlinkEscape rejects a path whose symlinks resolve outside root
// (an artifact or a task could plant one).
func checkNoSymlinkEscape(root, p string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("resolve task dir: %w", err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	if !within(realRoot, real) {
		return fmt.Errorf("%w: %s resolves to %s", ErrOutsideTaskDir, p, real)
	}
	return nil
}

// checkParentInside rejects a destination whose closest existing parent
// resolves outside root: a symlinked directory the task made would
// otherwise let the agent write anywhere on the host.
func checkParentInside(root, dest string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("resolve task dir: %w", err)
	}
	for dir := filepath.Dir(dest); ; dir = filepath.Dir(dir) {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			if !within(realRoot, real) {
				return fmt.Errorf("%w: %s resolves to %s", ErrOutsideTaskDir, dir, real)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
			return err
		}
	}
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxTemplateSize+1))
	if err != nil {
		return nil, err
	}
	if n > maxTemplateSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxTemplateSize)
	}
	return buf.Bytes(), nil
}

// writeIfChanged writes data to dest through a temporary file and rename,
// unless dest already holds exactly data.
func writeIfChanged(dest string, data []byte, mode fs.FileMode, uid, gid *int) (bool, error) {
	if fi, err := os.Lstat(dest); err == nil && !fi.Mode().IsRegular() {
		return false, fmt.Errorf("template destination %s is not a regular file", dest)
	}
	if old, err := os.ReadFile(dest); err == nil && bytes.Equal(old, data) {
		if err := os.Chmod(dest, mode); err != nil {
			return false, fmt.Errorf("template destination: %w", err)
		}
		return false, chown(dest, uid, gid)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return false, fmt.Errorf("template destination: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("template destination: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write template: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write template: %w", err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return false, fmt.Errorf("write template: %w", err)
	}
	if err := chown(tmp.Name(), uid, gid); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return false, fmt.Errorf("write template: %w", err)
	}
	return true, nil
}

func chown(path string, uid, gid *int) error {
	if uid == nil && gid == nil {
		return nil
	}
	u, g := -1, -1
	if uid != nil {
		u = *uid
	}
	if gid != nil {
		g = *gid
	}
	if err := os.Lchown(path, u, g); err != nil {
		return fmt.Errorf("chown template: %w", err)
	}
	return nil
}

// limitedBuffer fails a render whose output grows past max.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.max {
		return 0, fmt.Errorf("template output larger than %d bytes", l.max)
	}
	return l.buf.Write(p)
}
