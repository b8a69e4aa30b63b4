package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// pageSize is the kernel's base page size.
var pageSize = int64(os.Getpagesize())

// pagemapPresent and pagemapPFN decode a /proc/PID/pagemap entry
// (Documentation/admin-guide/mm/pagemap.rst): bit 63 "page present",
// bits 0–54 the page frame number (zero unless the reader has
// CAP_SYS_ADMIN).
const (
	pagemapPresent = 1 << 63
	pagemapPFN     = 1<<55 - 1
)

// residentUnion returns the memory resident for a set of processes with
// every physical page counted once: the RSS of the group. Summing each
// process's VmRSS counts the pages they share (the berth executable the
// agent and its plugins all map) once per process; PSS splits them. This
// counts what the group occupies, which is what "agent RSS, plugins
// included" asks. Needs root (page frame numbers are hidden otherwise).
func residentUnion(pids []int) (int64, error) {
	frames := map[uint64]struct{}{}
	for _, pid := range pids {
		if err := addResidentFrames(pid, frames); err != nil {
			return 0, err
		}
	}
	return int64(len(frames)) * pageSize, nil
}

// addResidentFrames adds the frames of pid's resident pages to frames,
// reading pagemap only for the mappings smaps says have resident pages.
func addResidentFrames(pid int, frames map[uint64]struct{}) error {
	ranges, err := residentRanges(pid)
	if err != nil {
		return err
	}
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return fmt.Errorf("open pagemap of %d: %w", pid, err)
	}
	defer pm.Close()
	for _, r := range ranges {
		n := (r[1] - r[0]) / uint64(pageSize)
		buf := make([]byte, n*8)
		if _, err := pm.ReadAt(buf, int64(r[0]/uint64(pageSize))*8); err != nil {
			return fmt.Errorf("read pagemap of %d at %#x: %w", pid, r[0], err)
		}
		for i := uint64(0); i < n; i++ {
			e := binary.LittleEndian.Uint64(buf[i*8:])
			if e&pagemapPresent == 0 {
				continue
			}
			pfn := e & pagemapPFN
			if pfn == 0 {
				return fmt.Errorf("pid %d: page frame numbers are hidden (needs root)", pid)
			}
			frames[pfn] = struct{}{}
		}
	}
	return nil
}

// residentRanges lists pid's mappings ([start, end)) with Rss > 0.
func residentRanges(pid int) ([][2]uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, fmt.Errorf("open smaps of %d: %w", pid, err)
	}
	defer f.Close()
	var out [][2]uint64
	var cur [2]uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				cur = [2]uint64{start, end}
				continue
			}
		}
		if fields[0] == "Rss:" && len(fields) >= 2 && fields[1] != "0" && cur[1] > cur[0] {
			out = append(out, cur)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read smaps of %d: %w", pid, err)
	}
	return out, nil
}
