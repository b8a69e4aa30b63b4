package hoststats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by every parser error: the file's text is not
// what the kernel writes.
var ErrMalformed = errors.New("malformed proc file")

// CPUTimes is one line of /proc/stat in clock ticks (USER_HZ).
type CPUTimes struct {
	Name                                                  string
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// Total is every tick the CPU counted. Guest time is already included in
// User and Nice, so it is not added again.
func (t CPUTimes) Total() uint64 {
	return t.User + t.Nice + t.System + t.Idle + t.IOWait + t.IRQ + t.SoftIRQ + t.Steal
}

// ParseStat returns the per-CPU lines ("cpu0", "cpu1"…) of /proc/stat,
// in file order; the aggregate "cpu" line is left out.
func ParseStat(data []byte) ([]CPUTimes, error) {
	var out []CPUTimes
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20) // the intr line is long
	for lineNo := 1; sc.Scan(); lineNo++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") || fields[0] == "cpu" {
			continue
		}
		if _, err := strconv.ParseUint(fields[0][3:], 10, 32); err != nil {
			return nil, fmt.Errorf("/proc/stat line %d: cpu name %q: %w", lineNo, fields[0], ErrMalformed)
		}
		// user nice system idle are in every kernel; iowait irq softirq
		// steal came later and default to zero.
		if len(fields) < 5 {
			return nil, fmt.Errorf("/proc/stat line %d: %d fields, want at least 5: %w", lineNo, len(fields), ErrMalformed)
		}
		var v [8]uint64
		for i := 0; i < len(v) && i+1 < len(fields); i++ {
			n, err := strconv.ParseUint(fields[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat line %d field %d %q: %w", lineNo, i+2, fields[i+1], ErrMalformed)
			}
			v[i] = n
		}
		out = append(out, CPUTimes{Name: fields[0], User: v[0], Nice: v[1], System: v[2], Idle: v[3],
			IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/stat: %w: %w", ErrMalformed, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("/proc/stat: no per-CPU lines: %w", ErrMalformed)
	}
	return out, nil
}

// Meminfo is the part of /proc/meminfo host stats report, in bytes.
type Meminfo struct {
	Total, Free, Available, Buffers, Cached uint64
	// HasAvailable is false on kernels older than 3.14, which do not
	// report MemAvailable.
	HasAvailable bool
}

// ParseMeminfo reads /proc/meminfo. Values are in kB (KiB) there and
// returned in bytes. MemTotal and MemFree are required.
func ParseMeminfo(data []byte) (Meminfo, error) {
	var m Meminfo
	var seenTotal, seenFree bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	for lineNo := 1; sc.Scan(); lineNo++ {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch key {
		case "MemTotal":
			dst, seenTotal = &m.Total, true
		case "MemFree":
			dst, seenFree = &m.Free, true
		case "MemAvailable":
			dst, m.HasAvailable = &m.Available, true
		case "Buffers":
			dst = &m.Buffers
		case "Cached":
			dst = &m.Cached
		default:
			continue
		}
		n, err := parseKB(rest)
		if err != nil {
			return Meminfo{}, fmt.Errorf("/proc/meminfo line %d (%s): %w", lineNo, key, err)
		}
		*dst = n
	}
	if err := sc.Err(); err != nil {
		return Meminfo{}, fmt.Errorf("/proc/meminfo: %w: %w", ErrMalformed, err)
	}
	if !seenTotal || !seenFree {
		return Meminfo{}, fmt.Errorf("/proc/meminfo: MemTotal or MemFree missing: %w", ErrMalformed)
	}
	return m, nil
}

// parseKB parses " 24683584 kB" into bytes.
func parseKB(s string) (uint64, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 2 || (len(fields) == 2 && fields[1] != "kB") {
		return 0, fmt.Errorf("value %q: %w", strings.TrimSpace(s), ErrMalformed)
	}
	n, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil || (len(fields) == 2 && n > (1<<64-1)/1024) {
		return 0, fmt.Errorf("value %q: %w", fields[0], ErrMalformed)
	}
	if len(fields) == 2 {
		n *= 1024
	}
	return n, nil
}

// ParseUptime returns the first field of /proc/uptime, whole seconds.
func ParseUptime(data []byte) (uint64, error) {
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0, fmt.Errorf("/proc/uptime: empty: %w", ErrMalformed)
	}
	secs, err := strconv.ParseFloat(fields[0], 64)
	// the bound keeps the conversion defined; no host is up 2^53 seconds
	if err != nil || !(secs >= 0 && secs <= 1<<53) { // also rejects NaN
		return 0, fmt.Errorf("/proc/uptime: %q: %w", fields[0], ErrMalformed)
	}
	return uint64(secs), nil
}

// ParseCPUInfoMHz returns the number of "cpu MHz" lines of /proc/cpuinfo
// and their sum; both are zero where the kernel does not report clock
// speeds (many ARM hosts).
func ParseCPUInfoMHz(data []byte) (cores int, totalMHz float64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20) // the flags lines are long
	for lineNo := 1; sc.Scan(); lineNo++ {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "cpu MHz" {
			continue
		}
		mhz, perr := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if perr != nil || !(mhz >= 0 && mhz <= 1e6) { // also rejects NaN
			return 0, 0, fmt.Errorf("/proc/cpuinfo line %d: cpu MHz %q: %w", lineNo, strings.TrimSpace(val), ErrMalformed)
		}
		cores++
		totalMHz += mhz
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("/proc/cpuinfo: %w: %w", ErrMalformed, err)
	}
	return cores, totalMHz, nil
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Device     uint64 // makedev(major, minor)
	Mountpoint string
	FSType     string
	Source     string
}

// ParseMountinfo reads /proc/self/mountinfo (see proc(5)): "ID parent
// major:minor root mountpoint options [optional…] - fstype source super".
func ParseMountinfo(data []byte) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 7 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("/proc/self/mountinfo line %d: %d fields, no \"- fstype source\": %w", lineNo, len(fields), ErrMalformed)
		}
		majStr, minStr, ok := strings.Cut(fields[2], ":")
		maj, err1 := strconv.ParseUint(majStr, 10, 32)
		minor, err2 := strconv.ParseUint(minStr, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/proc/self/mountinfo line %d: device %q: %w", lineNo, fields[2], ErrMalformed)
		}
		out = append(out, Mount{
			Device:     maj<<32 | minor,
			Mountpoint: unescapeOctal(fields[4]),
			FSType:     fields[sep+1],
			Source:     unescapeOctal(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/self/mountinfo: %w: %w", ErrMalformed, err)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of spaces, tabs,
// newlines and backslashes in paths; anything else is kept as is.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// ParseFilesystems returns the filesystem types of /proc/filesystems that
// need a block device: those not marked "nodev" (ext4, xfs, btrfs…), which
// are the ones host disk stats report.
func ParseFilesystems(data []byte) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 1 {
			out[fields[0]] = true
		}
	}
	return out
}
