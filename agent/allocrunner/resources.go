package allocrunner

import (
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

func jsonConfig(cfg map[string]any) (json.RawMessage, error) {
	if cfg == nil {
		cfg = map[string]any{}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode driver config: %w", err)
	}
	return raw, nil
}

// taskResources are the task's limits as the scheduler reserved them, or
// as the task asked when the allocation carries no reservation.
func taskResources(alloc *structs.Allocation, task *structs.Task) driver.Resources {
	var r driver.Resources
	if alloc.AllocatedResources != nil {
		if tr := alloc.AllocatedResources.Tasks[task.Name]; tr != nil {
			r.CPUShares = tr.Cpu.CpuShares
			r.Cores = append(r.Cores, tr.Cpu.ReservedCores...)
			r.MemoryMB = tr.Memory.MemoryMB
			r.MemoryMaxMB = tr.Memory.MemoryMaxMB
			r.DiskMB = alloc.AllocatedResources.Shared.DiskMB
			return r
		}
	}
	if task.Resources != nil {
		r.CPUShares = int64(task.Resources.CPU)
		r.MemoryMB = int64(task.Resources.MemoryMB)
		r.MemoryMaxMB = int64(task.Resources.MemoryMaxMB)
	}
	return r
}

// portMappings are the group's allocated ports.
func portMappings(alloc *structs.Allocation) []driver.PortMapping {
	if alloc.AllocatedResources == nil {
		return nil
	}
	var out []driver.PortMapping
	seen := map[string]bool{}
	add := func(p structs.AllocatedPortMapping) {
		if seen[p.Label] {
			return
		}
		seen[p.Label] = true
		to := p.To
		if to <= 0 {
			to = p.Value
		}
		out = append(out, driver.PortMapping{Label: p.Label, Host: p.Value, To: to, HostIP: p.HostIP})
	}
	for _, p := range alloc.AllocatedResources.Shared.Ports {
		add(p)
	}
	for _, n := range alloc.AllocatedResources.Shared.Networks {
		if n == nil {
			continue
		}
		for _, p := range n.ReservedPorts {
			add(structs.AllocatedPortMapping{Label: p.Label, Value: p.Value, To: p.To, HostIP: n.IP})
		}
		for _, p := range n.DynamicPorts {
			add(structs.AllocatedPortMapping{Label: p.Label, Value: p.Value, To: p.To, HostIP: n.IP})
		}
	}
	return out
}
