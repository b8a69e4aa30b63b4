package hoststats

import (
	"errors"
	"reflect"
	"testing"
)

const statFixture = `cpu  1312334 0 497670 1258255 22092 0 23130 99653 0 0
cpu0 650954 10 251138 639694 11076 1 4392 49551 0 0
cpu1 661379 0 246531 618560 11015 0 18737 50101 0 0
intr 43359634 0 0 0 0
ctxt 94449987
btime 1764620000
processes 123456
`

func TestParseStat(t *testing.T) {
	got, err := ParseStat([]byte(statFixture))
	if err != nil {
		t.Fatal(err)
	}
	want := []CPUTimes{
		{Name: "cpu0", User: 650954, Nice: 10, System: 251138, Idle: 639694, IOWait: 11076, IRQ: 1, SoftIRQ: 4392, Steal: 49551},
		{Name: "cpu1", User: 661379, System: 246531, Idle: 618560, IOWait: 11015, SoftIRQ: 18737, Steal: 50101},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// old kernels: four fields only
	old, err := ParseStat([]byte("cpu0 1 2 3 4\n"))
	if err != nil || old[0].Idle != 4 || old[0].Steal != 0 {
		t.Fatalf("4-field line: %+v, %v", old, err)
	}
}

func TestParseStatErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"no per-cpu":  "cpu 1 2 3 4\nctxt 5\n",
		"short":       "cpu0 1 2 3\n",
		"not number":  "cpu0 1 2 x 4\n",
		"bad name":    "cpuX 1 2 3 4\n",
		"negative":    "cpu0 1 -2 3 4\n",
		"overflowing": "cpu0 1 2 3 99999999999999999999999\n",
	} {
		if _, err := ParseStat([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

const meminfoFixture = `MemTotal:       24683584 kB
MemFree:        18751256 kB
MemAvailable:   21955200 kB
Buffers:           98440 kB
Cached:          2968016 kB
SwapCached:            0 kB
HugePages_Total:       0
`

func TestParseMeminfo(t *testing.T) {
	got, err := ParseMeminfo([]byte(meminfoFixture))
	if err != nil {
		t.Fatal(err)
	}
	want := Meminfo{Total: 24683584 * 1024, Free: 18751256 * 1024, Available: 21955200 * 1024,
		Buffers: 98440 * 1024, Cached: 2968016 * 1024, HasAvailable: true}
	if got != want {
		t.Fatalf("got %+v want %+v", got, want)
	}
	ms := memoryStats(got)
	if ms.Total != want.Total || ms.Available != want.Available || ms.Used != want.Total-want.Available || ms.Free != want.Free {
		t.Fatalf("memory stats %+v", ms)
	}
}

func TestMemoryStatsWithoutMemAvailable(t *testing.T) {
	got, err := ParseMeminfo([]byte("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"))
	if err != nil || got.HasAvailable {
		t.Fatalf("%+v, %v", got, err)
	}
	ms := memoryStats(got)
	if ms.Available != 400*1024 || ms.Used != 600*1024 {
		t.Fatalf("estimated %+v", ms)
	}
	// a cache larger than memory (bogus, but seen in containers) never
	// makes Used wrap around
	ms = memoryStats(Meminfo{Total: 10, Free: 5, Cached: 100})
	if ms.Available != 10 || ms.Used != 0 {
		t.Fatalf("capped %+v", ms)
	}
}

func TestParseMeminfoErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":      "",
		"no free":    "MemTotal: 1 kB\n",
		"bad value":  "MemTotal: x kB\nMemFree: 1 kB\n",
		"bad unit":   "MemTotal: 1 MB\nMemFree: 1 kB\n",
		"no value":   "MemTotal:\nMemFree: 1 kB\n",
		"overflow":   "MemTotal: 18446744073709551615 kB\nMemFree: 1 kB\n",
		"extra word": "MemTotal: 1 kB x\nMemFree: 1 kB\n",
	} {
		if _, err := ParseMeminfo([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestParseUptime(t *testing.T) {
	up, err := ParseUptime([]byte("16031.90 12582.55\n"))
	if err != nil || up != 16031 {
		t.Fatalf("%d, %v", up, err)
	}
	for _, in := range []string{"", "abc 1", "-5 1", "1e300 1", "NaN 0"} {
		if _, err := ParseUptime([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", in, err)
		}
	}
}

func TestParseCPUInfoMHz(t *testing.T) {
	in := "processor\t: 0\ncpu MHz\t\t: 2000.5\nflags\t\t: fpu vme\n\nprocessor\t: 1\ncpu MHz\t\t: 1999.5\n"
	cores, total, err := ParseCPUInfoMHz([]byte(in))
	if err != nil || cores != 2 || total != 4000 {
		t.Fatalf("%d cores %v MHz, %v", cores, total, err)
	}
	if cores, _, err := ParseCPUInfoMHz([]byte("processor : 0\nBogoMIPS : 50.00\n")); err != nil || cores != 0 {
		t.Fatalf("arm cpuinfo: %d, %v", cores, err)
	}
	if _, _, err := ParseCPUInfoMHz([]byte("cpu MHz : NaN\n")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad MHz: %v", err)
	}
}

const mountinfoFixture = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 27 254:0 /var/lib/x /srv/bind rw,relatime shared:1 - ext4 /dev/vda rw
31 27 0:40 / /tmp rw - tmpfs tmpfs rw
32 27 8:17 / /mnt/my\040disk rw master:3 - xfs /dev/sdb1 rw
33 27 0:50 / /run/containerd/io.containerd/rootfs rw - overlay overlay rw,lowerdir=/a
`

func TestParseMountinfo(t *testing.T) {
	got, err := ParseMountinfo([]byte(mountinfoFixture))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("%d mounts", len(got))
	}
	want := Mount{Device: 8<<32 | 17, Mountpoint: "/mnt/my disk", FSType: "xfs", Source: "/dev/sdb1"}
	if got[4] != want {
		t.Fatalf("got %+v want %+v", got[4], want)
	}
	for name, in := range map[string]string{
		"no separator": "27 1 254:0 / / rw shared:1 ext4 /dev/vda rw\n",
		"no source":    "27 1 254:0 / / rw - ext4\n",
		"bad device":   "27 1 254-0 / / rw - ext4 /dev/vda rw\n",
		"short":        "27 1\n",
	} {
		if _, err := ParseMountinfo([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/a\134b`: `/a\b`, `/a\011`: "/a\t", `/plain`: "/plain",
		`/trail\04`: `/trail\04`, `/big\777`: `/big\777`, `\`: `\`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRealMountsAndMountOf(t *testing.T) {
	mounts, err := ParseMountinfo([]byte(mountinfoFixture))
	if err != nil {
		t.Fatal(err)
	}
	realFS := ParseFilesystems([]byte("nodev\tproc\nnodev\ttmpfs\n\text4\nnodev\toverlay\n\txfs\n"))
	real := RealMounts(mounts, realFS)
	var points []string
	for _, m := range real {
		points = append(points, m.Mountpoint)
	}
	// the bind mount of /dev/vda is the same filesystem as /: reported once
	if !reflect.DeepEqual(points, []string{"/", "/mnt/my disk"}) {
		t.Fatalf("real mounts %v", points)
	}
	// without /proc/filesystems: device sources only
	if got := RealMounts(mounts, nil); len(got) != 2 {
		t.Fatalf("fallback real mounts %+v", got)
	}
	for path, want := range map[string]string{
		"/tmp/x": "/tmp", "/tmp": "/tmp", "/tmpfoo": "/", "/mnt/my disk/d": "/mnt/my disk", "/var": "/",
	} {
		m, ok := MountOf(mounts, path)
		if !ok || m.Mountpoint != want {
			t.Errorf("MountOf(%s) = %+v, want %s", path, m, want)
		}
	}
}

func TestCPUPercents(t *testing.T) {
	prev := map[string]CPUTimes{"cpu0": {Name: "cpu0", User: 100, System: 100, Idle: 100}}
	cur := []CPUTimes{
		// 100 ticks: 30 user (20+10 nice), 20 system (10+5+5), 40 idle (30+10 iowait), 10 steal
		{Name: "cpu0", User: 120, Nice: 10, System: 110, IRQ: 5, SoftIRQ: 5, Idle: 130, IOWait: 10, Steal: 10},
		// new CPU: since boot
		{Name: "cpu1", User: 1, System: 1, Idle: 2},
	}
	got := CPUPercents(prev, cur)
	want := []struct{ user, system, idle float64 }{{30, 20, 40}, {25, 25, 50}}
	for i, w := range want {
		if got[i].User != w.user || got[i].System != w.system || got[i].Idle != w.idle {
			t.Errorf("%s = %+v, want %+v", got[i].CPU, got[i], w)
		}
	}
	// no tick elapsed, or counters reset: never NaN, never negative
	same := CPUPercents(map[string]CPUTimes{"cpu0": cur[0]}, cur[:1])
	if same[0].Idle != 100 || same[0].User != 0 {
		t.Fatalf("no ticks: %+v", same[0])
	}
	reset := CPUPercents(map[string]CPUTimes{"cpu0": {User: 1 << 40}}, []CPUTimes{{Name: "cpu0", User: 5, Idle: 5}})
	if reset[0].User != 50 || reset[0].Idle != 50 {
		t.Fatalf("reset: %+v", reset[0])
	}
}

func TestDiskStats(t *testing.T) {
	// 1000 bytes, 400 free of which 300 available to non-root
	s := diskStats("/dev/x", "/m", fsUsage{Size: 1000, Free: 400, Avail: 300, Inodes: 10, InodesFree: 4})
	if s.Size != 1000 || s.Used != 600 || s.Available != 300 || s.UsedPercent != 100*600.0/900 || s.InodesUsedPercent != 60 {
		t.Fatalf("%+v", s)
	}
	if z := diskStats("", "", fsUsage{}); z.UsedPercent != 0 || z.InodesUsedPercent != 0 {
		t.Fatalf("empty fs %+v", z)
	}
}
