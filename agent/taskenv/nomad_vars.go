package taskenv

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// Names of the variables Nomad sets (its "runtime environment"). Each is
// also set with the BERTH_ prefix in place of NOMAD_.
const (
	AllocDir       = "NOMAD_ALLOC_DIR"
	TaskLocalDir   = "NOMAD_TASK_DIR"
	SecretsDir     = "NOMAD_SECRETS_DIR"
	AllocID        = "NOMAD_ALLOC_ID"
	ShortAllocID   = "NOMAD_SHORT_ALLOC_ID"
	AllocName      = "NOMAD_ALLOC_NAME"
	AllocIndex     = "NOMAD_ALLOC_INDEX"
	TaskName       = "NOMAD_TASK_NAME"
	GroupName      = "NOMAD_GROUP_NAME"
	JobID          = "NOMAD_JOB_ID"
	JobName        = "NOMAD_JOB_NAME"
	JobParentID    = "NOMAD_JOB_PARENT_ID"
	Namespace      = "NOMAD_NAMESPACE"
	Region         = "NOMAD_REGION"
	Datacenter     = "NOMAD_DC"
	CPULimit       = "NOMAD_CPU_LIMIT"
	CPUCores       = "NOMAD_CPU_CORES"
	MemLimit       = "NOMAD_MEMORY_LIMIT"
	MemMaxLimit    = "NOMAD_MEMORY_MAX_LIMIT"
	MetaPrefix     = "NOMAD_META_"
	IPPrefix       = "NOMAD_IP_"
	PortPrefix     = "NOMAD_PORT_"
	AddrPrefix     = "NOMAD_ADDR_"
	HostIPPrefix   = "NOMAD_HOST_IP_"
	HostPortPrefix = "NOMAD_HOST_PORT_"
	HostAddrPrefix = "NOMAD_HOST_ADDR_"
	AllocIPPrefix  = "NOMAD_ALLOC_IP_"
	AllocPortPfx   = "NOMAD_ALLOC_PORT_"
	AllocAddrPfx   = "NOMAD_ALLOC_ADDR_"
)

// nomadVars computes every NOMAD_* variable the builder has the facts for.
func (b *Builder) nomadVars() map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(AllocDir, b.allocDir)
	set(TaskLocalDir, b.localDir)
	set(SecretsDir, b.secretsDir)
	set(Region, b.region)
	if b.node != nil {
		set(Datacenter, b.node.Datacenter)
	}

	var job *structs.Job
	var group *structs.TaskGroup
	if a := b.alloc; a != nil {
		set(AllocID, a.ID)
		set(ShortAllocID, a.ID[:min(8, len(a.ID))])
		set(AllocName, a.Name)
		if idx, ok := allocIndex(a.Name); ok {
			m[AllocIndex] = strconv.Itoa(idx)
		}
		set(GroupName, a.TaskGroup)
		set(JobID, a.JobID)
		set(Namespace, a.Namespace)
		job = a.Job
		if job != nil {
			for _, g := range job.TaskGroups {
				if g != nil && g.Name == a.TaskGroup {
					group = g
				}
			}
		}
	}
	if job != nil {
		if m[JobID] == "" {
			set(JobID, job.ID)
		}
		set(JobName, job.Name)
		set(JobParentID, job.ParentID)
		if m[Namespace] == "" {
			set(Namespace, job.Namespace)
		}
		if m[Region] == "" {
			set(Region, job.Region)
		}
	}
	if b.task != nil {
		set(TaskName, b.task.Name)
	}

	b.resourceVars(m)

	// Meta: job < group < task, each key both as given (upper-cased, as
	// Nomad does) and cleaned into a valid variable name.
	meta := map[string]string{}
	if job != nil {
		for k, v := range job.Meta {
			meta[k] = v
		}
	}
	if group != nil {
		for k, v := range group.Meta {
			meta[k] = v
		}
	}
	if b.task != nil {
		for k, v := range b.task.Meta {
			meta[k] = v
		}
	}
	for k, v := range meta {
		m[MetaPrefix+k] = v
		m[MetaPrefix+strings.ToUpper(CleanEnvVar(k))] = v
	}

	b.networkVars(m)
	return m
}

// resourceVars sets the CPU and memory limits, preferring what the
// scheduler allocated over what the task asked for.
func (b *Builder) resourceVars(m map[string]string) {
	var cpu, mem, memMax int64
	var cores []uint16
	if b.task != nil && b.task.Resources != nil {
		cpu = int64(b.task.Resources.CPU)
		mem = int64(b.task.Resources.MemoryMB)
		memMax = int64(b.task.Resources.MemoryMaxMB)
	}
	if tr := b.taskResources(); tr != nil {
		if tr.Cpu.CpuShares > 0 {
			cpu = tr.Cpu.CpuShares
		}
		cores = tr.Cpu.ReservedCores
		if tr.Memory.MemoryMB > 0 {
			mem = tr.Memory.MemoryMB
		}
		if tr.Memory.MemoryMaxMB > 0 {
			memMax = tr.Memory.MemoryMaxMB
		}
	}
	if cpu > 0 {
		m[CPULimit] = strconv.FormatInt(cpu, 10)
	}
	if len(cores) > 0 {
		m[CPUCores] = cpuset(cores)
	}
	if mem > 0 {
		m[MemLimit] = strconv.FormatInt(mem, 10)
	}
	if memMax > 0 {
		m[MemMaxLimit] = strconv.FormatInt(memMax, 10)
	}
}

func (b *Builder) taskResources() *structs.AllocatedTaskResources {
	if b.alloc == nil || b.alloc.AllocatedResources == nil || b.task == nil {
		return nil
	}
	return b.alloc.AllocatedResources.Tasks[b.task.Name]
}

// networkVars sets the per-port variables. Group ports (Shared.Ports, or
// the ports of the group's network blocks when the scheduler did not list
// them) come first; the deprecated task-level networks last.
func (b *Builder) networkVars(m map[string]string) {
	if b.alloc == nil || b.alloc.AllocatedResources == nil {
		return
	}
	shared := b.alloc.AllocatedResources.Shared
	ports := shared.Ports
	if len(ports) == 0 {
		for _, n := range shared.Networks {
			ports = append(ports, networkPorts(n)...)
		}
	}
	for _, p := range ports {
		b.portVars(m, p)
	}
	if tr := b.taskResources(); tr != nil {
		for _, n := range tr.Networks {
			for _, p := range networkPorts(n) {
				b.portVars(m, p)
			}
		}
	}
}

func networkPorts(n *structs.NetworkResource) []structs.AllocatedPortMapping {
	if n == nil {
		return nil
	}
	var out []structs.AllocatedPortMapping
	for _, p := range slices.Concat(n.ReservedPorts, n.DynamicPorts) {
		out = append(out, structs.AllocatedPortMapping{Label: p.Label, Value: p.Value, To: p.To, HostIP: n.IP})
	}
	return out
}

// portVars sets Nomad's variables of one port: NOMAD_PORT_ is the port
// the task listens on (the mapped "to" port when there is one), the HOST_
// variables the node's side, and the ALLOC_ variables the address inside
// the allocation's network namespace.
func (b *Builder) portVars(m map[string]string, p structs.AllocatedPortMapping) {
	if p.Label == "" {
		return
	}
	taskPort := p.Value
	if p.To > 0 {
		taskPort = p.To
	}
	addLabeled(m, IPPrefix, p.Label, p.HostIP)
	addLabeled(m, PortPrefix, p.Label, strconv.Itoa(taskPort))
	addLabeled(m, HostIPPrefix, p.Label, p.HostIP)
	addLabeled(m, HostPortPrefix, p.Label, strconv.Itoa(p.Value))
	if p.HostIP != "" {
		addLabeled(m, AddrPrefix, p.Label, hostPort(p.HostIP, p.Value))
		addLabeled(m, HostAddrPrefix, p.Label, hostPort(p.HostIP, p.Value))
	}
	addLabeled(m, AllocPortPfx, p.Label, strconv.Itoa(taskPort))
	if b.allocIP != "" {
		addLabeled(m, AllocIPPrefix, p.Label, b.allocIP)
		addLabeled(m, AllocAddrPfx, p.Label, hostPort(b.allocIP, taskPort))
	}
}

// allocIndex parses the index out of an allocation name "job.group[3]".
func allocIndex(name string) (int, bool) {
	l := strings.LastIndexByte(name, '[')
	if l < 0 || !strings.HasSuffix(name, "]") {
		return 0, false
	}
	n, err := strconv.Atoi(name[l+1 : len(name)-1])
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// cpuset renders cores in Linux cpuset list notation: "0-2,7".
func cpuset(cores []uint16) string {
	c := slices.Clone(cores)
	slices.Sort(c)
	c = slices.Compact(c)
	var parts []string
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(int(c[i])))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", c[i], c[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
