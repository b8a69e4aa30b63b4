package fingerprint

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprintFromFakeRoot(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root+"/proc/cpuinfo", "processor\t: 0\ncpu MHz\t\t: 2000.5\nmodel name\t: Test CPU\n\nprocessor\t: 1\ncpu MHz\t\t: 2000.5\n")
	writeFile(t, root+"/proc/meminfo", "MemTotal:        4096000 kB\nMemFree: 1 kB\n")
	writeFile(t, root+"/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n")
	// hybrid: cgroup2 only under unified/ → version 1
	writeFile(t, root+"/sys/fs/cgroup/unified/cgroup.controllers", "")
	h, err := Fingerprint(Options{Root: root, DataDir: t.TempDir(), AdvertiseIP: "127.0.0.1", Version: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cpu.numcores": "2", "cpu.frequency": "2000", "cpu.totalcompute": "4001", "cpu.modelname": "Test CPU",
		"memory.totalbytes": "4194304000", "os.name": "debian", "os.version": "12", "os.cgroups.version": "1",
		"berth.version": "0.1.0", "nomad.version": NomadCompatVersion, "unique.network.ip-address": "127.0.0.1",
		"kernel.name": "linux",
	}
	for k, v := range want {
		if h.Attributes[k] != v {
			t.Errorf("%s = %q, want %q", k, h.Attributes[k], v)
		}
	}
	if h.Resources.Cpu.CpuShares != 4001 || h.Resources.Cpu.TotalCpuCores != 2 || h.Resources.Memory.MemoryMB != 4000 {
		t.Errorf("resources %+v", h.Resources)
	}
	if h.Resources.Disk.DiskMB <= 0 {
		t.Errorf("disk %d MB", h.Resources.Disk.DiskMB)
	}
	writeFile(t, root+"/sys/fs/cgroup/cgroup.controllers", "cpu memory")
	if v := cgroupVersion(root + "/sys/fs/cgroup"); v != "2" {
		t.Errorf("unified hierarchy: version %s, want 2", v)
	}
}
