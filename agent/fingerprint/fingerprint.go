// Package fingerprint describes the host an agent runs on as node
// attributes and resources, with Nomad's attribute names so that job
// constraints written for Nomad (${attr.kernel.name}, ${attr.cpu.arch},
// ${attr.unique.hostname}…) work unchanged.
package fingerprint

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/structs"
)

// NomadCompatVersion is reported as nomad.version: corpus job files
// constrain on it (">= 1.x") and tools read it to pick API features;
// berth speaks the wire format of this Nomad release.
const NomadCompatVersion = "1.9.0"

// Host is what the host fingerprint found.
type Host struct {
	Attributes map[string]string
	Resources  structs.NodeResources
}

// Options say where to look.
type Options struct {
	// DataDir is where allocations live: its filesystem is the node's disk.
	DataDir string
	// AdvertiseIP is the node's address (unique.network.ip-address).
	AdvertiseIP string
	// Version is berth's version (berth.version).
	Version string
	// Root prefixes /proc, /sys and /etc paths (tests); empty for "/".
	Root string
}

// Fingerprint inspects the host. Facts it cannot read are left out rather
// than failing the whole fingerprint; CPU and memory are required, since
// the servers refuse a node without them.
func Fingerprint(o Options) (*Host, error) {
	h := &Host{Attributes: map[string]string{}}
	a := h.Attributes
	a["berth.version"] = o.Version
	a["nomad.version"] = NomadCompatVersion
	a["nomad.revision"] = "berth"
	a["cpu.arch"] = runtime.GOARCH
	a["kernel.arch"] = kernelArch()
	a["kernel.name"] = runtime.GOOS
	if host, err := os.Hostname(); err == nil {
		a["unique.hostname"] = host
	}
	if o.AdvertiseIP != "" {
		a["unique.network.ip-address"] = o.AdvertiseIP
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		a["kernel.version"] = cstr(uts.Release[:])
		a["os.kernel"] = a["kernel.version"]
	}
	osRelease(o.path("/etc/os-release"), a)
	if err := cpu(o.path("/proc/cpuinfo"), h); err != nil {
		return nil, err
	}
	if err := memory(o.path("/proc/meminfo"), h); err != nil {
		return nil, err
	}
	if o.DataDir != "" {
		var st unix.Statfs_t
		if err := unix.Statfs(o.DataDir, &st); err == nil {
			free := int64(st.Bavail) * int64(st.Bsize)
			total := int64(st.Blocks) * int64(st.Bsize)
			a["unique.storage.volume"] = o.DataDir
			a["unique.storage.bytestotal"] = strconv.FormatInt(total, 10)
			a["unique.storage.bytesfree"] = strconv.FormatInt(free, 10)
			h.Resources.Disk.DiskMB = free >> 20
		}
	}
	a["os.cgroups.version"] = cgroupVersion(o.path("/sys/fs/cgroup"))
	a["unique.cgroup.version"] = a["os.cgroups.version"]
	networks(o.AdvertiseIP, a)
	return h, nil
}

func (o Options) path(p string) string { return o.Root + p }

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func kernelArch() string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		return cstr(uts.Machine[:])
	}
	return runtime.GOARCH
}

// osRelease reads os.name and os.version from /etc/os-release.
func osRelease(path string, a map[string]string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			a["os.name"] = v
		case "VERSION_ID":
			a["os.version"] = v
		case "PRETTY_NAME":
			a["os.pretty_name"] = v
		}
	}
}

// cpu reads cores and MHz; total compute (cores × MHz) is what the
// scheduler counts in CPU shares.
func cpu(path string, h *Host) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("fingerprint cpu: %w", err)
	}
	defer f.Close()
	cores := 0
	var mhz float64
	model := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			cores++
		case "cpu MHz":
			if m, err := strconv.ParseFloat(v, 64); err == nil && m > mhz {
				mhz = m
			}
		case "model name":
			model = v
		}
	}
	if cores == 0 {
		cores = runtime.NumCPU()
	}
	if mhz <= 0 {
		// some virtual machines report no frequency: assume a modest 1 GHz
		// so the node still offers capacity
		mhz = 1000
	}
	total := int64(float64(cores) * mhz)
	a := h.Attributes
	a["cpu.numcores"] = strconv.Itoa(cores)
	a["cpu.frequency"] = strconv.Itoa(int(mhz))
	a["cpu.totalcompute"] = strconv.FormatInt(total, 10)
	a["cpu.usablecompute"] = a["cpu.totalcompute"]
	a["cpu.reservablecores"] = strconv.Itoa(cores)
	if model != "" {
		a["cpu.modelname"] = model
	}
	h.Resources.Cpu.CpuShares = total
	h.Resources.Cpu.TotalCpuCores = uint16(cores)
	for i := 0; i < cores; i++ {
		h.Resources.Cpu.ReservableCpuCores = append(h.Resources.Cpu.ReservableCpuCores, uint16(i))
	}
	return nil
}

func memory(path string, h *Host) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("fingerprint memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return fmt.Errorf("fingerprint memory: %w", err)
			}
			h.Attributes["memory.totalbytes"] = strconv.FormatInt(kb*1024, 10)
			h.Resources.Memory.MemoryMB = kb / 1024
			return nil
		}
	}
	return fmt.Errorf("fingerprint memory: no MemTotal in %s", path)
}

// cgroupVersion is "2" on a unified hierarchy and "1" otherwise (a hybrid
// host, with cgroup2 only at /sys/fs/cgroup/unified, counts as 1: that is
// where the controllers are).
func cgroupVersion(root string) string {
	if _, err := os.Stat(root + "/cgroup.controllers"); err == nil {
		return "2"
	}
	return "1"
}

// networks adds Nomad's per-interface attributes for the interface holding
// the advertise address, plus unique.network.interfaces.
func networks(advertise string, a map[string]string) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return
	}
	var names []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		names = append(names, ifc.Name)
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok {
				continue
			}
			if ipn.IP.String() == advertise {
				a["unique.network.interface"] = ifc.Name
				if ifc.HardwareAddr != nil {
					a["unique.platform.mac-address"] = ifc.HardwareAddr.String()
				}
			}
			if ip4 := ipn.IP.To4(); ip4 != nil {
				a["unique.network."+ifc.Name+".ip-address"] = ip4.String()
			}
		}
	}
	a["unique.network.interfaces"] = strings.Join(names, ",")
	if a["network.speed"] == "" {
		a["network.speed"] = "1000" // Nomad's default when unknown
	}
}
