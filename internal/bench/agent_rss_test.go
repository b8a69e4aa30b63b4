package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procMem is one process's memory, in bytes: VmRSS and its anonymous
// and file-backed parts (/proc/PID/status), and PSS (smaps_rollup),
// which splits pages shared between processes — the agent and its
// plugins map the same berth executable — among them.
type procMem struct {
	Pid             int
	Comm            string
	RSS, Anon, File int64
	PSS             int64
}

// procRSS returns a process's resident set size in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	m, err := readProcMem(pid)
	return m.RSS, err
}

func readProcMem(pid int) (procMem, error) {
	m := procMem{Pid: pid}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("read status of %d: %w", pid, err)
	}
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	if err := parseKB(data, fields); err != nil {
		return m, fmt.Errorf("pid %d status: %w", pid, err)
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("pid %d: no VmRSS (a zombie?)", pid)
	}
	if _, m.Comm, err = procParent(pid); err != nil {
		return m, err
	}
	// "berth plugin containerd" says more than "berth"
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		if args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"); len(args) > 1 {
			m.Comm += " " + strings.Join(args[1:min(len(args), 3)], " ")
		}
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		_ = parseKB(data, map[string]*int64{"Pss:": &m.PSS}) // optional: older kernels lack it
	}
	return m, nil
}

// parseKB fills fields from "Key:   123 kB" lines.
func parseKB(data []byte, fields map[string]*int64) error {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		if dst, ok := fields[f[0]]; ok {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", f[0], err)
			}
			*dst = kb << 10
		}
	}
	return nil
}

// procParent returns a process's parent PID and command name from
// /proc/PID/stat ("pid (comm) state ppid ...").
func procParent(pid int) (ppid int, comm string, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return 0, "", fmt.Errorf("pid %d: odd stat %q", pid, data)
	}
	f := strings.Fields(string(data[closing+1:]))
	if len(f) < 2 {
		return 0, "", fmt.Errorf("pid %d: odd stat %q", pid, data)
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, string(data[open+1 : closing]), err
}

// allPids lists every process's PID.
func allPids() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// descendants returns every process below root (children, their
// children...): for an agent, its driver plugins.
func descendants(root int) ([]int, error) {
	pids, err := allPids()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, pid := range pids {
		if ppid, _, err := procParent(pid); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 && len(out) < len(pids) {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// treeRSS is the memory of root and every process below it.
type treeRSS struct {
	Root    int64 // root's VmRSS
	Plugins int64 // sum of the descendants' VmRSS
	NProcs  int   // descendants counted
	PSS     int64 // PSS of root and descendants
	// Resident counts every physical page of root and descendants once
	// (0 when page frames cannot be read: not root).
	Resident int64
	Procs    []procMem
}

func (t treeRSS) Total() int64 { return t.Root + t.Plugins }

func measureTree(root int) (treeRSS, error) {
	var t treeRSS
	m, err := readProcMem(root)
	if err != nil {
		return t, err
	}
	t.Root, t.PSS, t.Procs = m.RSS, m.PSS, []procMem{m}
	kids, err := descendants(root)
	if err != nil {
		return t, err
	}
	pids := []int{root}
	for _, pid := range kids {
		if m, err := readProcMem(pid); err == nil { // one may have just exited
			t.Plugins += m.RSS
			t.PSS += m.PSS
			t.NProcs++
			t.Procs = append(t.Procs, m)
			pids = append(pids, pid)
		}
	}
	t.Resident, _ = residentUnion(pids) // optional: needs root
	return t, nil
}

// detail lists each process's memory in MiB.
func (t treeRSS) detail() string {
	var b strings.Builder
	for _, p := range t.Procs {
		fmt.Fprintf(&b, "\n\t\tpid %d %-24s rss %5.1f (anon %5.1f, file %5.1f) pss %5.1f MiB",
			p.Pid, p.Comm, mib(p.RSS), mib(p.Anon), mib(p.File), mib(p.PSS))
	}
	return b.String()
}

// shimRSS sums the RSS of the containerd shims serving namespace ns
// (containerd's per-container cost, not berth's) and counts them.
func shimRSS(ns string) (int64, int) {
	pids, err := allPids()
	if err != nil {
		return 0, 0
	}
	var total int64
	n := 0
	for _, pid := range pids {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-namespace" && args[i+1] == ns {
				if rss, err := procRSS(pid); err == nil {
					total += rss
					n++
				}
				break
			}
		}
	}
	return total, n
}

// mib converts bytes to MiB for ReportMetric.
func mib(b int64) float64 { return float64(b) / (1 << 20) }

// clockTick is USER_HZ, the unit of /proc/PID/stat's CPU times; 100 on
// every Linux architecture berth runs on.
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time a process has used
// (/proc/PID/stat fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	closing := bytes.LastIndexByte(data, ')')
	if closing < 0 {
		return 0, fmt.Errorf("pid %d: odd stat %q", pid, data)
	}
	f := strings.Fields(string(data[closing+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("pid %d: odd stat %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: odd stat %q", pid, data)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// treeCPU is the CPU time used by root and every process below it.
func treeCPU(root int) time.Duration {
	total, _ := procCPU(root)
	kids, _ := descendants(root)
	for _, pid := range kids {
		if d, err := procCPU(pid); err == nil {
			total += d
		}
	}
	return total
}
