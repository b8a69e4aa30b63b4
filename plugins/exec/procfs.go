package exec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what berth reads from /proc/PID/stat.
type procStat struct {
	PID   int
	State byte
	PGRP  int
	// UTime and STime are CPU time in clock ticks (USER_HZ).
	UTime, STime uint64
	// StartTime is field 22: when the process started, in clock ticks
	// after boot. With the pid it identifies a process across pid reuse.
	StartTime uint64
}

// clockTicks is USER_HZ, which Linux fixes at 100 for user space on every
// architecture berth runs on (sysconf(_SC_CLK_TCK) reports it).
const clockTicks = 100

var errNoProcess = errors.New("no such process")

// readProcStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
func readProcStat(pid int) (*procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pid %d: %w", pid, errNoProcess)
		}
		return nil, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseProcStat(pid, b)
}

func parseProcStat(pid int, b []byte) (*procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse stat of pid %d: no command name", pid)
	}
	// fields[0] is field 3 (state).
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("parse stat of pid %d: %d fields", pid, len(fields)+2)
	}
	num := func(field int) uint64 {
		v, _ := strconv.ParseUint(fields[field-3], 10, 64)
		return v
	}
	return &procStat{
		PID:       pid,
		State:     fields[0][0],
		PGRP:      int(num(5)),
		UTime:     num(14),
		STime:     num(15),
		StartTime: num(22),
	}, nil
}

// processAlive reports whether pid is the very process that started at
// startTime and has not exited (a zombie has exited).
func processAlive(pid int, startTime uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.StartTime == startTime && st.State != 'Z' && st.State != 'X'
}

// groupMembers lists the live processes whose process group is pgid.
func groupMembers(pgid int) ([]*procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []*procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.PGRP != pgid || st.State == 'Z' {
			continue // gone meanwhile, or not ours
		}
		out = append(out, st)
	}
	return out, nil
}

// readRSS returns VmRSS of pid in bytes (0 for a kernel thread or zombie).
func readRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, nil
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS of pid %d: %w", pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, sc.Err()
}
