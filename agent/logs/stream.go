package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berth-dev/berth/api"
)

// StreamFrame is one chunk of a streamed file: the API's wire type
// (Nomad's shape), so what the agent streams is what clients decode. A
// frame with nothing set is a heartbeat.
type StreamFrame = api.StreamFrame

// Stream origins.
const (
	OriginStart = api.OriginStart
	OriginEnd   = api.OriginEnd
)

// File events, as Nomad names them.
const (
	FileEventDeleted   = "file deleted"
	FileEventTruncated = "file truncated"
)

// ErrInvalidArg is wrapped by Stream errors caused by bad arguments.
var ErrInvalidArg = errors.New("invalid log stream argument")

// Tunables of the follower, shortened by tests.
var (
	pollInterval = 200 * time.Millisecond
	frameSize    = 64 * 1024
)

// Stream sends task's kind ("stdout" or "stderr") log, across its rotated
// files in index order, to emit. origin "start" skips offset bytes from
// the beginning; "end" starts offset bytes before the end. Without follow
// it returns at the end of the newest file; with follow it keeps sending
// what is appended, moving on to new files as the logger rotates, until
// ctx ends (returning nil). An error from emit stops it and is returned.
func Stream(ctx context.Context, logDir, task, kind, origin string, offset int64, follow bool, emit func(StreamFrame) error) error {
	if kind != "stdout" && kind != "stderr" {
		return fmt.Errorf("%w: type %q must be stdout or stderr", ErrInvalidArg, kind)
	}
	if origin == "" {
		origin = OriginStart
	}
	if origin != OriginStart && origin != OriginEnd {
		return fmt.Errorf("%w: origin %q must be start or end", ErrInvalidArg, origin)
	}
	if offset < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalidArg, offset)
	}
	base := task + "." + kind
	s := &streamer{dir: logDir, base: base, emit: emit}

	idx, pos, err := s.startPosition(origin, offset)
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil
		}
		next, err := s.drain(idx, pos)
		if err != nil {
			return err
		}
		pos = next
		idxs, err := listIndexes(logDir, base)
		if err != nil {
			return err
		}
		if later := firstAfter(idxs, idx); later >= 0 {
			// The logger moved on. Read what is left of this file (written
			// before the rotation) and continue with the next one.
			if pos, err = s.drain(idx, pos); err != nil {
				return err
			}
			if idx >= 0 && !contains(idxs, idx) {
				if err := s.emit(StreamFrame{File: s.name(idx), FileEvent: FileEventDeleted}); err != nil {
					return err
				}
			}
			idx, pos = later, 0
			continue
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pollInterval):
		}
	}
}

type streamer struct {
	dir, base string
	emit      func(StreamFrame) error
}

// name is the file as Nomad's frames call it: relative to the alloc dir.
func (s *streamer) name(idx int) string {
	return path.Join("alloc", "logs", s.base+"."+strconv.Itoa(idx))
}

func (s *streamer) path(idx int) string {
	return filepath.Join(s.dir, s.base+"."+strconv.Itoa(idx))
}

// startPosition finds the file index and offset to start at. With no file
// yet it returns index -1: the first file to appear is read from 0.
func (s *streamer) startPosition(origin string, offset int64) (int, int64, error) {
	idxs, err := listIndexes(s.dir, s.base)
	if err != nil {
		return 0, 0, err
	}
	if len(idxs) == 0 {
		return -1, 0, nil
	}
	sizes := make([]int64, len(idxs))
	for i, idx := range idxs {
		if fi, err := os.Stat(s.path(idx)); err == nil {
			sizes[i] = fi.Size()
		}
	}
	if origin == OriginStart {
		for i, idx := range idxs {
			if offset < sizes[i] || i == len(idxs)-1 {
				return idx, min(offset, sizes[i]), nil
			}
			offset -= sizes[i]
		}
	}
	for i := len(idxs) - 1; i >= 0; i-- {
		if offset <= sizes[i] || i == 0 {
			return idxs[i], max(sizes[i]-offset, 0), nil
		}
		offset -= sizes[i]
	}
	return idxs[0], 0, nil
}

// drain emits file idx from pos to its current end and returns the new
// position. A missing file is not an error: rotation may have deleted it.
func (s *streamer) drain(idx int, pos int64) (int64, error) {
	if idx < 0 {
		return pos, nil
	}
	f, err := os.Open(s.path(idx))
	if errors.Is(err, fs.ErrNotExist) {
		return pos, nil
	}
	if err != nil {
		return pos, fmt.Errorf("open log file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < pos {
		if err := s.emit(StreamFrame{File: s.name(idx), FileEvent: FileEventTruncated}); err != nil {
			return pos, err
		}
		pos = 0
	}
	buf := make([]byte, frameSize)
	for {
		n, err := f.ReadAt(buf, pos)
		if n > 0 {
			frame := StreamFrame{Offset: pos, Data: append([]byte(nil), buf[:n]...), File: s.name(idx)}
			pos += int64(n)
			if err := s.emit(frame); err != nil {
				return pos, err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return pos, nil
		}
		if err != nil {
			return pos, fmt.Errorf("read log file: %w", err)
		}
	}
}

// firstAfter returns the smallest index in idxs greater than idx, or -1.
func firstAfter(idxs []int, idx int) int {
	for _, i := range idxs {
		if i > idx {
			return i
		}
	}
	return -1
}

func contains(idxs []int, idx int) bool {
	for _, i := range idxs {
		if i == idx {
			return true
		}
	}
	return false
}
