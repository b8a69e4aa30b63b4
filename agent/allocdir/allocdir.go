// Package allocdir lays out an allocation's directory on the host, the
// way Nomad does: a directory shared by the group's tasks (alloc/ with
// data, logs and tmp) and one directory per task (local, secrets, tmp).
// Drivers mount these into tasks at /alloc, /local and /secrets.
package allocdir

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Directory names, as Nomad's.
const (
	SharedAllocName = "alloc"
	SharedDataDir   = "data"
	LogDirName      = "logs"
	TmpDirName      = "tmp"
	TaskLocal       = "local"
	TaskSecrets     = "secrets"
)

// ErrInvalidName is returned for an allocation ID or task name that is not
// a safe single path element.
var ErrInvalidName = errors.New("invalid path element")

// ErrOutsideRoot is returned when a directory to destroy is not inside the
// root it was created under.
var ErrOutsideRoot = errors.New("directory is not inside the alloc root")

// ErrMounted is returned by Destroy when something is still mounted inside
// the tree: removing it would delete the mounted content, and mounts belong
// to the drivers.
var ErrMounted = errors.New("mount point inside alloc dir")

// AllocDir is one allocation's directory tree.
type AllocDir struct {
	// Dir is <root>/<allocID>.
	Dir string
	// SharedDir is Dir/alloc, shared by all tasks of the allocation.
	SharedDir string
	// LogDir is SharedDir/logs.
	LogDir string

	root    string
	allocID string
}

// TaskDir is one task's directory inside an AllocDir.
type TaskDir struct {
	// Dir is <alloc Dir>/<task>.
	Dir        string
	LocalDir   string
	SecretsDir string
	TmpDir     string
}

// ValidName reports whether name can be used as one path element: not
// empty, not "." or "..", no separator or NUL.
func ValidName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > 255 {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	// Names reserved by the layout itself would collide with the shared dir.
	if name == SharedAllocName {
		return fmt.Errorf("%w: %q is reserved", ErrInvalidName, name)
	}
	return nil
}

// New returns the layout of allocID's directory under root. Nothing is
// created until Build.
func New(root, allocID string) *AllocDir {
	dir := filepath.Join(root, allocID)
	shared := filepath.Join(dir, SharedAllocName)
	return &AllocDir{
		Dir:       dir,
		SharedDir: shared,
		LogDir:    filepath.Join(shared, LogDirName),
		root:      filepath.Clean(root),
		allocID:   allocID,
	}
}

// TaskDir returns the layout of task's directory (not checked nor created).
func (d *AllocDir) TaskDir(task string) *TaskDir {
	dir := filepath.Join(d.Dir, task)
	return &TaskDir{
		Dir:        dir,
		LocalDir:   filepath.Join(dir, TaskLocal),
		SecretsDir: filepath.Join(dir, TaskSecrets),
		TmpDir:     filepath.Join(dir, TmpDirName),
	}
}

// Build creates the tree for tasks. It is idempotent: existing directories
// are kept (their modes are reset to the layout's).
func (d *AllocDir) Build(tasks []string) error {
	if err := d.checkID(); err != nil {
		return fmt.Errorf("build alloc dir: %w", err)
	}
	for _, t := range tasks {
		if err := ValidName(t); err != nil {
			return fmt.Errorf("build alloc dir: task name: %w", err)
		}
	}
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	dirs := []dirMode{
		{d.Dir, 0o755},
		{d.SharedDir, 0o755},
		{filepath.Join(d.SharedDir, SharedDataDir), 0o755},
		{d.LogDir, 0o755},
		{filepath.Join(d.SharedDir, TmpDirName), 0o777 | fs.ModeSticky},
	}
	for _, t := range tasks {
		td := d.TaskDir(t)
		dirs = append(dirs,
			dirMode{td.Dir, 0o755},
			dirMode{td.LocalDir, 0o755},
			dirMode{td.SecretsDir, 0o700},
			dirMode{td.TmpDir, 0o777 | fs.ModeSticky})
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir.path, 0o755); err != nil {
			return fmt.Errorf("build alloc dir: %w", err)
		}
		// Refuse to build through a symlink planted in place of a directory.
		fi, err := os.Lstat(dir.path)
		if err != nil {
			return fmt.Errorf("build alloc dir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("build alloc dir: %s is not a directory", dir.path)
		}
		// Chmod explicitly: MkdirAll is subject to the umask and ignores
		// the sticky bit.
		if err := os.Chmod(dir.path, dir.mode); err != nil {
			return fmt.Errorf("build alloc dir: %w", err)
		}
	}
	return nil
}

// Destroy removes the whole tree. It refuses a directory outside the root
// and a tree with something mounted in it; read-only files and directories
// left by tasks are made writable first.
func (d *AllocDir) Destroy() error {
	if err := d.checkID(); err != nil {
		return fmt.Errorf("destroy alloc dir: %w", err)
	}
	rel, err := filepath.Rel(d.root, filepath.Clean(d.Dir))
	if err != nil || rel != d.allocID {
		return fmt.Errorf("destroy alloc dir %s: %w", d.Dir, ErrOutsideRoot)
	}
	if _, err := os.Lstat(d.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	mounts, err := mountsUnder(d.Dir)
	if err != nil {
		return fmt.Errorf("destroy alloc dir: %w", err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("destroy alloc dir: %w: %s", ErrMounted, strings.Join(mounts, ", "))
	}
	makeWritable(d.Dir)
	if err := os.RemoveAll(d.Dir); err != nil {
		return fmt.Errorf("destroy alloc dir: %w", err)
	}
	return nil
}

// makeWritable gives every directory of the tree owner rwx: a directory a
// task made read-only would stop RemoveAll for a non-root agent. WalkDir
// calls fn on a directory before reading it and does not follow symlinks,
// so only the tree itself is touched.
func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if e != nil && e.IsDir() && err == nil {
			if fi, ierr := e.Info(); ierr == nil && fi.Mode().Perm()&0o700 != 0o700 {
				_ = os.Chmod(path, fi.Mode().Perm()|0o700)
			}
		}
		return nil
	})
}

func (d *AllocDir) checkID() error {
	if err := ValidName(d.allocID); err != nil {
		return fmt.Errorf("alloc id: %w", err)
	}
	return nil
}

// mountsUnder lists mount points at or below dir, from /proc/self/mountinfo.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // not Linux, or no procfs: nothing to check against
	}
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir)
	var found []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == prefix || strings.HasPrefix(mp, prefix+"/") {
			found = append(found, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return found, nil
}

// unescapeMountPath decodes the \ooo octal escapes mountinfo uses for
// spaces, tabs, newlines and backslashes.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
