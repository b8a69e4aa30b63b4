package schedtest

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/structs"
)

// Node returns a ready, eligible node "node-<i>" in dc1 with 4000 MHz,
// 8 GiB, 100 GiB disk, 4 cores, the docker and exec drivers and typical
// Linux attributes. Its computed class is set.
func Node(i int) *structs.Node {
	n := &structs.Node{
		ID:         fmt.Sprintf("%08d-0000-4000-8000-000000000000", i),
		Name:       fmt.Sprintf("node-%d", i),
		Datacenter: "dc1",
		NodePool:   structs.DefaultNodePool,
		Attributes: map[string]string{
			"kernel.name":               "linux",
			"kernel.version":            "6.1.0",
			"os.name":                   "debian",
			"cpu.arch":                  "amd64",
			"berth.version":             "0.1.0",
			"driver.exec":               "1",
			"unique.hostname":           fmt.Sprintf("node-%d", i),
			"unique.network.ip-address": fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255),
		},
		Meta: map[string]string{"rack": fmt.Sprintf("r%d", i%4)},
		NodeResources: &structs.NodeResources{
			Cpu:    structs.NodeCpuResources{CpuShares: 4000, TotalCpuCores: 4},
			Memory: structs.NodeMemoryResources{MemoryMB: 8192},
			Disk:   structs.NodeDiskResources{DiskMB: 100 * 1024},
		},
		ReservedResources: &structs.NodeReservedResources{
			Networks: structs.NodeReservedNetworkResources{ReservedHostPorts: "22"},
		},
		Drivers: map[string]*structs.DriverInfo{
			"docker": {Detected: true, Healthy: true},
		},
		SchedulingEligibility: structs.NodeSchedulingEligible,
		Status:                structs.NodeStatusReady,
	}
	n.ComputedClass = scheduler.ComputeNodeClass(n)
	return n
}

// Job returns a canonicalized service job with one group "web" of count
// tasks each asking 100 MHz and 128 MiB, on the docker driver.
func Job(id string, count int) *structs.Job {
	j := &structs.Job{
		ID:          id,
		Name:        id,
		Type:        structs.JobTypeService,
		Datacenters: []string{"dc*"},
		TaskGroups: []*structs.TaskGroup{{
			Name:          "web",
			Count:         count,
			EphemeralDisk: &structs.EphemeralDisk{SizeMB: 100},
			Tasks: []*structs.Task{{
				Name:      "server",
				Driver:    "docker",
				Config:    map[string]any{"image": "nginx:1.27"},
				Resources: &structs.Resources{CPU: 100, MemoryMB: 128},
			}},
		}},
	}
	j.Canonicalize()
	return j
}

// BatchJob is Job as a batch job.
func BatchJob(id string, count int) *structs.Job {
	j := Job(id, count)
	j.Type = structs.JobTypeBatch
	j.Update = nil
	j.Reschedule = nil
	j.TaskGroups[0].ReschedulePolicy = nil
	j.TaskGroups[0].Update = nil
	j.Canonicalize()
	return j
}

// SystemJob is Job as a system job of one group.
func SystemJob(id string) *structs.Job {
	j := Job(id, 1)
	j.Type = structs.JobTypeSystem
	j.TaskGroups[0].ReschedulePolicy = nil
	j.Canonicalize()
	return j
}

// Running marks allocations running, as an agent would report.
func Running(allocs []*structs.Allocation) []*structs.Allocation {
	out := make([]*structs.Allocation, len(allocs))
	for i, a := range allocs {
		c := *a
		c.ClientStatus = structs.AllocClientStatusRunning
		out[i] = &c
	}
	return out
}

// Failed returns a copy of the alloc failed at t.
func Failed(a *structs.Allocation, t time.Time) *structs.Allocation {
	c := *a
	c.ClientStatus = structs.AllocClientStatusFailed
	c.ModifyTime = t.UnixNano()
	return &c
}
