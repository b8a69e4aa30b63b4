// Package artifact downloads a task's artifact blocks into its task
// directory: http(s) and file sources, checksums, and unpacking of tar,
// tar.gz and zip archives with guards against paths and links that would
// leave the destination. It covers what job files use of go-getter without
// go-getter's breadth (no git, s3 or hg sources).
package artifact

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/structs"
)

// Errors callers can tell apart.
var (
	ErrUnsupportedSource = errors.New("unsupported artifact source")
	ErrChecksum          = errors.New("artifact checksum mismatch")
	ErrTooLarge          = errors.New("artifact too large")
	ErrUnsafePath        = errors.New("unsafe path")
)

// DefaultMaxBytes bounds a download and, separately, what an archive
// unpacks to.
const DefaultMaxBytes int64 = 1 << 30

// Options tune Fetch.
type Options struct {
	// MaxBytes bounds the download and the unpacked size (0: DefaultMaxBytes).
	MaxBytes int64
	// HTTPClient is used for http(s) sources (nil: a client with sane
	// timeouts; GetterInsecure then skips TLS verification).
	HTTPClient *http.Client
}

// Fetch downloads a into taskDir with default options. The deadline of
// ctx bounds the whole fetch.
func Fetch(ctx context.Context, a *structs.TaskArtifact, taskDir string, env *taskenv.Env) error {
	return FetchWithOptions(ctx, a, taskDir, env, Options{})
}

// FetchWithOptions is Fetch with explicit options.
func FetchWithOptions(ctx context.Context, a *structs.TaskArtifact, taskDir string, env *taskenv.Env, opts Options) error {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	src := a.GetterSource
	interp := func(s string) string { return s }
	if env != nil {
		interp = env.ReplaceEnv
	}
	src = interp(src)
	u, err := url.Parse(src)
	if err != nil {
		return fmt.Errorf("artifact source %q: %w", src, err)
	}
	options := map[string]string{}
	for k, v := range a.GetterOptions {
		options[k] = interp(v)
	}
	// go-getter also accepts options in the URL query; take the ones we know.
	q := u.Query()
	for _, k := range []string{"checksum", "archive"} {
		if v := q.Get(k); v != "" {
			options[k] = v
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()

	mode := a.GetterMode
	if mode == "" {
		mode = structs.GetterModeAny
	}
	if mode != structs.GetterModeAny && mode != structs.GetterModeFile && mode != structs.GetterModeDir {
		return fmt.Errorf("artifact mode %q: must be any, file or dir", mode)
	}
	rel := interp(a.RelativeDest)
	if rel == "" {
		rel = "local/"
	}
	dest, err := insideDir(taskDir, rel)
	if err != nil {
		return fmt.Errorf("artifact destination: %w", err)
	}

	// The destination (or a parent) may be a symlink a task left behind.
	guard := &extractor{root: filepath.Clean(taskDir)}
	if err := guard.checkParents(filepath.Join(dest, "x")); err != nil {
		return fmt.Errorf("artifact destination: %w", err)
	}

	var sum *checksum
	if c := options["checksum"]; c != "" {
		if sum, err = parseChecksum(c); err != nil {
			return fmt.Errorf("artifact %s: %w", redact(u), err)
		}
	}

	// Download into the task dir itself so the final rename stays on one
	// filesystem; the temp file is removed whatever happens.
	tmp, err := os.CreateTemp(taskDir, ".artifact-*")
	if err != nil {
		return fmt.Errorf("artifact temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	var h hash.Hash
	w := io.Writer(tmp)
	if sum != nil {
		h = sum.newHash()
		w = io.MultiWriter(tmp, h)
	}
	switch u.Scheme {
	case "http", "https":
		err = download(ctx, opts, a, u, w)
	case "file":
		err = copyLocal(ctx, u.Path, w, opts.MaxBytes)
	default:
		err = fmt.Errorf("%w: %q (http, https and file are)", ErrUnsupportedSource, u.Scheme)
	}
	if err != nil {
		return fmt.Errorf("artifact %s: %w", redact(u), err)
	}
	if sum != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != sum.value {
			return fmt.Errorf("artifact %s: %w: %s is %s, want %s", redact(u), ErrChecksum, sum.kind, got, sum.value)
		}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}

	name := path.Base(u.Path)
	kind := archiveKind(name)
	if options["archive"] == "false" {
		kind = ""
	}
	switch {
	case mode == structs.GetterModeFile:
		return placeFile(tmp, dest)
	case kind != "":
		if err := unpack(ctx, tmp, kind, dest, opts.MaxBytes); err != nil {
			return fmt.Errorf("artifact %s: unpack: %w", redact(u), err)
		}
		return nil
	case mode == structs.GetterModeDir:
		return fmt.Errorf("artifact %s: mode dir needs an archive", redact(u))
	default:
		if name == "" || name == "/" || name == "." {
			name = "artifact"
		}
		return placeFile(tmp, filepath.Join(dest, name))
	}
}

func download(ctx context.Context, opts Options, a *structs.TaskArtifact, u *url.URL, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	for k, v := range a.GetterHeaders {
		req.Header.Set(k, v)
	}
	client := opts.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 30 * time.Second
		if a.GetterInsecure {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the job asked for it
		}
		client = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: bad status %s", resp.Status)
	}
	if resp.ContentLength > opts.MaxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, resp.ContentLength, opts.MaxBytes)
	}
	return copyBounded(w, resp.Body, opts.MaxBytes)
}

func copyLocal(ctx context.Context, p string, w io.Writer, max int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrUnsupportedSource, p)
	}
	return copyBounded(w, f, max)
}

func copyBounded(w io.Writer, r io.Reader, max int64) error {
	n, err := io.Copy(w, io.LimitReader(r, max+1))
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if n > max {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return nil
}

// placeFile moves the downloaded file to dest (a file path) with mode 0644.
func placeFile(tmp *os.File, dest string) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("artifact destination: %w", err)
	}
	if fi, err := os.Lstat(dest); err == nil && fi.IsDir() {
		return fmt.Errorf("artifact destination %s is a directory", dest)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	return nil
}

type checksum struct {
	kind, value string
	newHash     func() hash.Hash
}

func parseChecksum(s string) (*checksum, error) {
	kind, value, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("checksum %q: want type:hex", s)
	}
	c := &checksum{kind: strings.ToLower(kind), value: strings.ToLower(value)}
	var size int
	switch c.kind {
	case "md5":
		c.newHash, size = md5.New, md5.Size
	case "sha1":
		c.newHash, size = sha1.New, sha1.Size
	case "sha256":
		c.newHash, size = sha256.New, sha256.Size
	case "sha512":
		c.newHash, size = sha512.New, sha512.Size
	default:
		return nil, fmt.Errorf("checksum type %q: want md5, sha1, sha256 or sha512", kind)
	}
	if b, err := hex.DecodeString(c.value); err != nil || len(b) != size {
		return nil, fmt.Errorf("checksum %q: not a %s hex digest", s, c.kind)
	}
	return c, nil
}

// redact hides credentials in a URL for error messages.
func redact(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("redacted")
	return c.String()
}

// insideDir joins rel to root and fails if the result leaves root.
func insideDir(root, rel string) (string, error) {
	root = filepath.Clean(root)
	full := filepath.Join(root, rel)
	if full != root && !strings.HasPrefix(full, root+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %q leaves %s", ErrUnsafePath, rel, root)
	}
	return full, nil
}
