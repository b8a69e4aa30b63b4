package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// rotator writes into base.<n> files of at most maxSize bytes, keeping the
// newest maxFiles of them.
type rotator struct {
	dir, base string
	maxFiles  int
	maxSize   int64

	idx  int
	size int64
	f    *os.File
}

func newRotator(dir, base string, maxFiles int, maxSize int64) (*rotator, error) {
	r := &rotator{dir: dir, base: base, maxFiles: maxFiles, maxSize: maxSize}
	idxs, err := listIndexes(dir, base)
	if err != nil {
		return nil, err
	}
	if len(idxs) > 0 {
		r.idx = idxs[len(idxs)-1]
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	r.prune()
	return r, nil
}

func (r *rotator) path(idx int) string {
	return filepath.Join(r.dir, r.base+"."+strconv.Itoa(idx))
}

func (r *rotator) open() error {
	f, err := os.OpenFile(r.path(r.idx), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log file: %w", err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// Write splits p over as many files as its size needs.
func (r *rotator) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if r.size >= r.maxSize {
			if err := r.rotate(); err != nil {
				return written, err
			}
		}
		n := min(int64(len(p)), r.maxSize-r.size)
		m, err := r.f.Write(p[:n])
		written += m
		r.size += int64(m)
		if err != nil {
			return written, fmt.Errorf("write log file: %w", err)
		}
		p = p[n:]
	}
	return written, nil
}

func (r *rotator) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("close log file: %w", err)
	}
	r.idx++
	if err := r.open(); err != nil {
		return err
	}
	r.prune()
	return nil
}

// prune deletes files older than the newest maxFiles.
func (r *rotator) prune() {
	idxs, err := listIndexes(r.dir, r.base)
	if err != nil {
		return
	}
	for _, i := range idxs {
		if i <= r.idx-r.maxFiles {
			_ = os.Remove(r.path(i))
		}
	}
}

func (r *rotator) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// listIndexes returns the indexes of base.<n> files in dir, ascending.
func listIndexes(dir, base string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list log files: %w", err)
	}
	prefix := base + "."
	var idxs []int
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.Atoi(name[len(prefix):])
		if err != nil || n < 0 || strconv.Itoa(n) != name[len(prefix):] {
			continue
		}
		idxs = append(idxs, n)
	}
	slices.Sort(idxs)
	return idxs, nil
}
