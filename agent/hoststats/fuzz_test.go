package hoststats

import (
	"math"
	"testing"
)

// The parsers read kernel text, but a broken or hostile procfs (a
// container's fake /proc) must give errors, never panics or nonsense.

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statFixture))
	f.Add([]byte("cpu0 1 2 3 4\n"))
	f.Add([]byte("cpu0 18446744073709551615 18446744073709551615 18446744073709551615 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cpus, err := ParseStat(data)
		if err != nil {
			return
		}
		for _, s := range CPUPercents(map[string]CPUTimes{}, cpus) {
			for _, v := range []float64{s.User, s.System, s.Idle} {
				if math.IsNaN(v) || v < 0 || v > 100.0001 {
					t.Fatalf("percent %v of %+v", v, s)
				}
			}
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add([]byte(meminfoFixture))
	f.Add([]byte("MemTotal: 1 kB\nMemFree: 2 kB\nCached: 18014398509481983 kB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMeminfo(data)
		if err != nil {
			return
		}
		if ms := memoryStats(m); ms.Used > ms.Total || ms.Available > ms.Total {
			t.Fatalf("%+v from %+v", ms, m)
		}
	})
}

func FuzzParseUptime(f *testing.F) {
	f.Add([]byte("16031.10 12582.55\n"))
	f.Add([]byte("9007199254740993 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseUptime(data)
	})
}

func FuzzParseCPUInfoMHz(f *testing.F) {
	f.Add([]byte("processor\t: 0\ncpu MHz\t\t: 2000.5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cores, total, err := ParseCPUInfoMHz(data)
		if err == nil && (cores < 0 || total < 0 || math.IsNaN(total)) {
			t.Fatalf("%d cores, %v MHz", cores, total)
		}
	})
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(mountinfoFixture))
	f.Add([]byte(`1 2 3:4 / /a\ b\0 - x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		mounts, err := ParseMountinfo(data)
		if err != nil {
			return
		}
		RealMounts(mounts, ParseFilesystems(data))
		MountOf(mounts, "/var/lib/berth")
	})
}
