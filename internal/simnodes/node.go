package simnodes

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/berth-dev/berth/structs"
)

// Shape of a simulated node. The figures are those of a small cloud VM.
const (
	NodeCPUMHz     = 4000
	NodeCores      = 4
	NodeMemoryMB   = 8192
	NodeDiskMB     = 100 * 1024
	MinDynamicPort = 20000
	MaxDynamicPort = 32000
	// NomadVersion is what the nodes claim to run, for constraints on
	// ${attr.nomad.version}.
	NomadVersion = "1.9.3"
)

// newID returns a random UUID (version 4 layout) from r.
func newID(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// fakeIP is a loopback-looking address unique per node index; nothing is
// ever sent to it.
func fakeIP(i int) string {
	n := i + 256 // skip 127.0.0.x
	return fmt.Sprintf("127.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

// BuildNode returns the i-th synthetic node: realistic attributes,
// resources and healthy docker and exec drivers. IDs come from r, so a
// seeded r gives the same fleet every time.
func BuildNode(i int, r *rand.Rand, datacenters, classes []string, racks int, now time.Time) *structs.Node {
	name := fmt.Sprintf("sim-%05d", i)
	ip := fakeIP(i)
	dc := datacenters[i%len(datacenters)]
	class := ""
	if len(classes) > 0 {
		class = classes[(i/len(datacenters))%len(classes)]
	}
	if racks <= 0 {
		racks = 1
	}
	rack := fmt.Sprintf("r%02d", i%racks)
	drv := func(version string) *structs.DriverInfo {
		return &structs.DriverInfo{
			Attributes:        map[string]string{"driver.version": version},
			Detected:          true,
			Healthy:           true,
			HealthDescription: "Healthy",
			UpdateTime:        now,
		}
	}
	return &structs.Node{
		ID:         newID(r),
		SecretID:   newID(r),
		Datacenter: dc,
		Name:       name,
		HTTPAddr:   ip + ":4646",
		Attributes: map[string]string{
			"kernel.name":               "linux",
			"kernel.version":            "6.8.0-45-generic",
			"kernel.arch":               "x86_64",
			"os.name":                   "ubuntu",
			"os.version":                "24.04",
			"cpu.arch":                  "amd64",
			"cpu.numcores":              strconv.Itoa(NodeCores),
			"cpu.frequency":             strconv.Itoa(NodeCPUMHz / NodeCores),
			"cpu.totalcompute":          strconv.Itoa(NodeCPUMHz),
			"cpu.modelname":             "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
			"memory.totalbytes":         strconv.FormatInt(NodeMemoryMB<<20, 10),
			"unique.hostname":           name,
			"unique.network.ip-address": ip,
			"unique.storage.volume":     "/dev/nvme0n1p1",
			"unique.storage.bytesfree":  strconv.FormatInt((NodeDiskMB-4096)<<20, 10),
			"unique.storage.bytestotal": strconv.FormatInt(NodeDiskMB<<20, 10),
			"driver.docker":             "1",
			"driver.docker.version":     "27.3.1",
			"driver.exec":               "1",
			"nomad.version":             NomadVersion,
			"nomad.revision":            "simulated",
			"berth.version":             "sim",
			"platform.aws.placement.availability-zone": dc + "-" + string(rune('a'+i%3)),
		},
		NodeResources: &structs.NodeResources{
			Cpu: structs.NodeCpuResources{
				CpuShares:          NodeCPUMHz,
				TotalCpuCores:      NodeCores,
				ReservableCpuCores: []uint16{0, 1, 2, 3},
			},
			Memory:         structs.NodeMemoryResources{MemoryMB: NodeMemoryMB},
			Disk:           structs.NodeDiskResources{DiskMB: NodeDiskMB},
			MinDynamicPort: MinDynamicPort,
			MaxDynamicPort: MaxDynamicPort,
		},
		ReservedResources: &structs.NodeReservedResources{
			Cpu:      structs.NodeReservedCpuResources{CpuShares: 100},
			Memory:   structs.NodeReservedMemoryResources{MemoryMB: 256},
			Disk:     structs.NodeReservedDiskResources{DiskMB: 1024},
			Networks: structs.NodeReservedNetworkResources{ReservedHostPorts: "22"},
		},
		Meta: map[string]string{
			"rack":      rack,
			"simulated": "true",
		},
		NodeClass:             class,
		NodePool:              "default",
		SchedulingEligibility: structs.NodeSchedulingEligible,
		Status:                structs.NodeStatusInit,
		StatusUpdatedAt:       now.Unix(),
		Drivers: map[string]*structs.DriverInfo{
			"docker": drv("27.3.1"),
			"exec":   drv("1.0.0"),
		},
	}
}
