package artifact

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Archive kinds.
const (
	kindTar   = "tar"
	kindTarGz = "tar.gz"
	kindZip   = "zip"
)

// archiveKind tells an archive by its file name, as go-getter does.
func archiveKind(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return kindTarGz
	case strings.HasSuffix(n, ".tar"):
		return kindTar
	case strings.HasSuffix(n, ".zip"):
		return kindZip
	}
	return ""
}

// unpack extracts the archive in f into dest, writing at most max bytes.
func unpack(ctx context.Context, f *os.File, kind, dest string, max int64) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	x := &extractor{root: filepath.Clean(dest), left: max}
	var err error
	switch kind {
	case kindTar:
		err = x.tar(ctx, f)
	case kindTarGz:
		var gz *gzip.Reader
		if gz, err = gzip.NewReader(f); err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		err = x.tar(ctx, gz)
	case kindZip:
		var fi os.FileInfo
		if fi, err = f.Stat(); err != nil {
			return err
		}
		var zr *zip.Reader
		if zr, err = zip.NewReader(f, fi.Size()); err != nil {
			return fmt.Errorf("zip: %w", err)
		}
		err = x.zip(ctx, zr)
	default:
		return fmt.Errorf("unknown archive kind %q", kind)
	}
	if err != nil {
		return err
	}
	return x.verifyLinks()
}

// verifyLinks checks, once everything is unpacked, that every symlink
// created resolves inside root. The per-entry check is lexical; chains of
// links ("a -> .", "b -> a/..") are only visible on the final tree. An
// escaping link is removed and reported.
func (x *extractor) verifyLinks() error {
	if len(x.links) == 0 {
		return nil
	}
	realRoot, err := filepath.EvalSymlinks(x.root)
	if err != nil {
		return err
	}
	var bad []error
	for _, l := range x.links {
		real, err := filepath.EvalSymlinks(l)
		if errors.Is(err, fs.ErrNotExist) {
			continue // dangling: points at nothing on the host either
		}
		if err == nil && (real == realRoot || strings.HasPrefix(real, realRoot+string(filepath.Separator))) {
			continue
		}
		_ = os.Remove(l)
		bad = append(bad, fmt.Errorf("%w: link %s resolves outside the destination", ErrUnsafePath, l))
	}
	return errors.Join(bad...)
}

// maxEntries bounds the number of entries of one archive.
const maxEntries = 100_000

type extractor struct {
	root  string
	left  int64
	links []string
}

func (x *extractor) tar(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n >= maxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, maxEntries)
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.dir(h.Name)
		case tar.TypeReg, tar.TypeRegA:
			err = x.file(h.Name, tr, mode)
		case tar.TypeSymlink:
			err = x.symlink(h.Name, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(h.Name, h.Linkname)
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		default:
			// Devices, FIFOs: nothing a task needs from an artifact.
			return fmt.Errorf("%w: %s has unsupported type %q", ErrUnsafePath, h.Name, h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func (x *extractor) zip(ctx context.Context, zr *zip.Reader) error {
	if len(zr.File) > maxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, maxEntries)
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		mode := zf.Mode()
		var err error
		switch {
		case mode.IsDir():
			err = x.dir(zf.Name)
		case mode&fs.ModeSymlink != 0:
			err = x.zipSymlink(zf)
		case mode.IsRegular():
			var rc io.ReadCloser
			if rc, err = zf.Open(); err == nil {
				err = x.file(zf.Name, rc, mode.Perm())
				rc.Close()
			}
		default:
			err = fmt.Errorf("%w: %s has unsupported mode %v", ErrUnsafePath, zf.Name, mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipSymlink(zf *zip.File) error {
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return err
	}
	return x.symlink(zf.Name, string(target))
}

// EntryPath is the unpacker's path check: it maps an archive entry name to
// a path inside root, or fails with ErrUnsafePath for an absolute name,
// one with a ".." that leaves root, or one that is empty or has NUL bytes.
func EntryPath(root, name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: entry name %q", ErrUnsafePath, name)
	}
	n := strings.ReplaceAll(name, `\`, "/")
	if path.IsAbs(n) || filepath.IsAbs(n) || filepath.VolumeName(n) != "" {
		return "", fmt.Errorf("%w: absolute entry name %q", ErrUnsafePath, name)
	}
	clean := path.Clean(n)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%w: entry %q leaves the destination", ErrUnsafePath, name)
	}
	root = filepath.Clean(root)
	if clean == "." {
		return root, nil
	}
	return filepath.Join(root, filepath.FromSlash(clean)), nil
}

// LinkTarget checks a symlink entry: target, resolved from the link's own
// directory (or root for an absolute target), must stay inside root.
// It returns the target to create (kept relative when it was).
func LinkTarget(root, linkPath, target string) (string, error) {
	if target == "" || strings.ContainsRune(target, 0) {
		return "", fmt.Errorf("%w: link target %q", ErrUnsafePath, target)
	}
	root = filepath.Clean(root)
	t := filepath.FromSlash(strings.ReplaceAll(target, `\`, "/"))
	var resolved string
	if filepath.IsAbs(t) {
		// Absolute targets mean the task's view; never the host's.
		return "", fmt.Errorf("%w: absolute link target %q", ErrUnsafePath, target)
	}
	resolved = filepath.Join(filepath.Dir(linkPath), t)
	if resolved != root && !strings.HasPrefix(resolved, root+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: link %s -> %q leaves the destination", ErrUnsafePath, linkPath, target)
	}
	return t, nil
}

// checkParents fails when a component of p between root and p is a
// symlink: writing through it could land outside root even though every
// name is clean (an earlier entry "a -> /etc" then "a/passwd").
func (x *extractor) checkParents(p string) error {
	rel, err := filepath.Rel(x.root, filepath.Dir(p))
	if err != nil {
		return fmt.Errorf("%w: %s", ErrUnsafePath, p)
	}
	if rel == "." {
		return nil
	}
	cur := x.root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // created by MkdirAll below, as a real directory
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
			return fmt.Errorf("%w: %s goes through %s, which is not a directory", ErrUnsafePath, p, cur)
		}
	}
	return nil
}

func (x *extractor) prepare(name string) (string, error) {
	p, err := EntryPath(x.root, name)
	if err != nil {
		return "", err
	}
	if err := x.checkParents(p); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return p, nil
}

func (x *extractor) dir(name string) error {
	p, err := x.prepare(name)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: directory %s is a symlink", ErrUnsafePath, p)
	}
	return os.MkdirAll(p, 0o755)
}

func (x *extractor) file(name string, r io.Reader, mode fs.FileMode) error {
	p, err := x.prepare(name)
	if err != nil {
		return err
	}
	if p == x.root {
		return fmt.Errorf("%w: file entry %q is the destination itself", ErrUnsafePath, name)
	}
	// Replace, never write through, whatever is there (it may be a symlink).
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o200)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, x.left+1))
	x.left -= n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if x.left < 0 {
		return fmt.Errorf("%w: unpacked size over the limit", ErrTooLarge)
	}
	return os.Chmod(p, mode)
}

func (x *extractor) symlink(name, target string) error {
	p, err := x.prepare(name)
	if err != nil {
		return err
	}
	t, err := LinkTarget(x.root, p, target)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(t, p); err != nil {
		return err
	}
	x.links = append(x.links, p)
	return nil
}

func (x *extractor) hardlink(name, target string) error {
	p, err := x.prepare(name)
	if err != nil {
		return err
	}
	src, err := EntryPath(x.root, target)
	if err != nil {
		return err
	}
	if err := x.checkParents(src); err != nil {
		return err
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("hard link %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: hard link %s to non-regular %s", ErrUnsafePath, name, target)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Link(src, p)
}
