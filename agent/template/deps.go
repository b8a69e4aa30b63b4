package template

import (
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"
)

// racyWindow is how recent a file's mtime may be, relative to when it was
// stamped, before the stamp is not trusted: a file rewritten within the
// filesystem's timestamp granularity (1-2 s on some filesystems, a kernel
// tick on others) with the same size would otherwise look unchanged. Such
// a file is reported changed until it is older than the window; a render
// compares its output with the file on disk, so that costs a render, not
// an action.
const racyWindow = 2 * time.Second

// Stamp is what polling compares to notice that a file changed.
type Stamp struct {
	Exists  bool
	Size    int64
	ModTime time.Time
	Mode    fs.FileMode
}

func stampOf(path string) Stamp {
	fi, err := os.Stat(path)
	if err != nil {
		// missing (or unreadable): its appearance is a change
		return Stamp{}
	}
	return Stamp{Exists: true, Size: fi.Size(), ModTime: fi.ModTime(), Mode: fi.Mode()}
}

// Deps are the files one render read (its source and the files the file
// function read, including ones that were missing), each stamped just
// before it was read, so that a change after the read is always noticed.
type Deps struct {
	files   map[string]Stamp
	stamped time.Time
}

// Files returns the absolute paths of the files the render read, sorted.
func (d Deps) Files() []string {
	return slices.Sorted(maps.Keys(d.files))
}

// Empty reports whether the render read no file: nothing can change it
// while the task runs.
func (d Deps) Empty() bool { return len(d.files) == 0 }

// Changed reports whether any file may differ from when it was read: its
// stamp differs, or it was modified too close to the read to trust the
// stamp (racyWindow).
func (d Deps) Changed() bool {
	for path, old := range d.files {
		now := stampOf(path)
		if now != old {
			return true
		}
		if now.Exists && !now.ModTime.Before(d.stamped.Add(-racyWindow)) {
			return true
		}
	}
	return false
}

// tracker records the files a render reads.
type tracker struct {
	files   map[string]Stamp
	stamped time.Time
}

func newTracker() *tracker {
	return &tracker{files: map[string]Stamp{}, stamped: time.Now()}
}

// readInside stamps path, checks that it does not resolve outside root,
// and reads it (bounded). The path is recorded even when the check or the
// read fails (a missing file, say), so that fixing it triggers a render.
func (tr *tracker) readInside(root, path string) ([]byte, error) {
	if _, seen := tr.files[path]; !seen {
		tr.files[path] = stampOf(path)
	}
	if err := checkNoSymlinkEscape(root, path); err != nil {
		return nil, err
	}
	return readBounded(path)
}

func (tr *tracker) deps() Deps {
	return Deps{files: tr.files, stamped: tr.stamped}
}
