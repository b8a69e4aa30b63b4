package structs

import "slices"

// Default and minimum task resources, as Nomad's.
const (
	DefaultResourcesCPU      = 100 // MHz
	DefaultResourcesMemoryMB = 300
	MinResourcesCPU          = 1
	MinResourcesMemoryMB     = 10
)

// Resources is what a task asks for.
type Resources struct {
	CPU         int // MHz; 100 by default unless Cores is set
	Cores       int
	MemoryMB    int
	MemoryMaxMB int
	DiskMB      int // deprecated in Nomad in favour of ephemeral_disk
	IOPS        int
	Networks    []*NetworkResource // deprecated in Nomad in favour of group networks
	Devices     []*RequestedDevice
	NUMA        *NUMAResource
	SecretsMB   int
}

// RequestedDevice is a device block: devices of a kind the task needs.
type RequestedDevice struct {
	Name        string // "vendor/type/model", "vendor/type" or "type"
	Count       uint64 // 1 by default
	Constraints []*Constraint
	Affinities  []*Affinity
}

// NUMAResource is the NUMA affinity of a task's cores.
type NUMAResource struct {
	Affinity string
	Devices  []string
}

// DefaultResources returns the resources a task gets when it names none.
func DefaultResources() *Resources {
	return &Resources{CPU: DefaultResourcesCPU, MemoryMB: DefaultResourcesMemoryMB}
}

// Copy returns a deep copy.
func (r *Resources) Copy() *Resources {
	if r == nil {
		return nil
	}
	c := *r
	c.Networks = copyPtrs(r.Networks, (*NetworkResource).Copy)
	c.Devices = copyPtrs(r.Devices, (*RequestedDevice).Copy)
	if r.NUMA != nil {
		c.NUMA = &NUMAResource{Affinity: r.NUMA.Affinity, Devices: slices.Clone(r.NUMA.Devices)}
	}
	return &c
}

// Copy returns a deep copy.
func (d *RequestedDevice) Copy() *RequestedDevice {
	if d == nil {
		return nil
	}
	c := *d
	c.Constraints = copyPtrs(d.Constraints, (*Constraint).Copy)
	c.Affinities = copyPtrs(d.Affinities, (*Affinity).Copy)
	return &c
}
