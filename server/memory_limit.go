package server

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// DefaultMemoryLimitCap caps the soft memory limit a server sets itself
// when neither GOMEMLIMIT nor Config.MemoryLimit says otherwise. With it a
// server holding 10,000 nodes and 100,000 allocations (~310 MB of live
// heap) stays under 1 GiB of RSS; without it the garbage collector's
// default headroom (GOGC=100) after a burst of placements took it to
// ~1.1–1.3 GiB. A cluster whose state outgrows it makes the collector run
// more often (Go caps that at about half the CPU): raise it then.
const DefaultMemoryLimitCap = 800 << 20

// memoryLimitFor is the soft limit a server sets itself: configured when
// positive; none when negative; otherwise min(DefaultMemoryLimitCap, half
// of the machine's memory).
func memoryLimitFor(configured int64, totalRAM uint64) int64 {
	switch {
	case configured > 0:
		return configured
	case configured < 0:
		return -1
	}
	limit := int64(DefaultMemoryLimitCap)
	if half := int64(totalRAM / 2); totalRAM > 0 && half < limit {
		limit = half
	}
	return limit
}

// applyMemoryLimit sets Go's soft memory limit for the process unless the
// operator set GOMEMLIMIT, which always wins. It returns the limit in
// force (-1: none set here).
func applyMemoryLimit(configured int64, logger *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return -1
	}
	limit := memoryLimitFor(configured, totalMemory())
	if limit <= 0 {
		return -1
	}
	debug.SetMemoryLimit(limit)
	logger.Debug("soft memory limit set", "limit_bytes", limit)
	return limit
}
