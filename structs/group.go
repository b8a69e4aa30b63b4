package structs

import (
	"encoding/json"
	"slices"
	"time"
)

// Volume types a group may request.
const (
	VolumeTypeHost = "host"
	VolumeTypeCSI  = "csi"
)

// TaskGroup is a set of tasks placed together on one node: one allocation.
type TaskGroup struct {
	Name        string
	Count       int // 1 (or Scaling.Min) when missing or null in JSON; explicit 0 stays 0
	Constraints []*Constraint
	Affinities  []*Affinity
	Spreads     []*Spread
	Tasks       []*Task
	Volumes     map[string]*VolumeRequest

	RestartPolicy    *RestartPolicy
	Disconnect       *DisconnectStrategy
	ReschedulePolicy *ReschedulePolicy
	EphemeralDisk    *EphemeralDisk
	Update           *UpdateStrategy
	Migrate          *MigrateStrategy
	Networks         []*NetworkResource
	Meta             map[string]string
	Services         []*Service
	Scaling          *ScalingPolicy
	Consul           *Consul

	ShutdownDelay  time.Duration
	MaxRunDuration time.Duration
	// Deprecated by Disconnect.StopOnClientAfter; accepted as Nomad does.
	StopAfterClientDisconnect time.Duration
	// Deprecated by Disconnect.LostAfter; accepted as Nomad does.
	MaxClientDisconnect     time.Duration
	PreventRescheduleOnLost bool
}

// VolumeRequest is a group's volume block: a host or CSI volume its tasks
// may mount.
type VolumeRequest struct {
	Name           string
	Type           string
	Source         string
	ReadOnly       bool
	Sticky         bool
	AccessMode     string
	AttachmentMode string
	MountOptions   *CSIMountOptions
	PerAlloc       bool
}

// CSIMountOptions are the mount options of a CSI volume.
type CSIMountOptions struct {
	FSType     string
	MountFlags []string
}

// UnmarshalJSON gives Count its Nomad default: when Count is missing or
// null it is Scaling.Min if that is given, else 1. A Scaling block without
// Min gets the resulting Count as its Min.
func (tg *TaskGroup) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias TaskGroup
	a := (*alias)(tg)
	a.Count = 1
	if err := json.Unmarshal(data, a); err != nil {
		return err
	}
	var probe struct {
		Count   *int
		Scaling *struct{ Min *int64 }
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return err
	}
	scalingMin := probe.Scaling != nil && probe.Scaling.Min != nil
	if probe.Count == nil && scalingMin {
		tg.Count = int(*probe.Scaling.Min)
	}
	if tg.Scaling != nil && !scalingMin {
		tg.Scaling.Min = int64(tg.Count)
	}
	return nil
}

// LookupTask returns the task with the given name, or nil.
func (tg *TaskGroup) LookupTask(name string) *Task {
	for _, t := range tg.Tasks {
		if t != nil && t.Name == name {
			return t
		}
	}
	return nil
}

// LookupVolume returns the group volume with the given name, or nil.
func (tg *TaskGroup) LookupVolume(name string) *VolumeRequest {
	return tg.Volumes[name]
}

// portLabels returns every port label defined by the group's networks and
// its tasks' (deprecated) resource networks.
func (tg *TaskGroup) portLabels() map[string]bool {
	labels := map[string]bool{}
	add := func(nets []*NetworkResource) {
		for _, n := range nets {
			if n == nil {
				continue
			}
			for _, p := range n.ReservedPorts {
				labels[p.Label] = true
			}
			for _, p := range n.DynamicPorts {
				labels[p.Label] = true
			}
		}
	}
	add(tg.Networks)
	for _, t := range tg.Tasks {
		if t != nil && t.Resources != nil {
			add(t.Resources.Networks)
		}
	}
	return labels
}

// Copy returns a deep copy of the group.
func (tg *TaskGroup) Copy() *TaskGroup {
	if tg == nil {
		return nil
	}
	c := *tg
	c.Constraints = copyPtrs(tg.Constraints, (*Constraint).Copy)
	c.Affinities = copyPtrs(tg.Affinities, (*Affinity).Copy)
	c.Spreads = copyPtrs(tg.Spreads, (*Spread).Copy)
	c.Tasks = copyPtrs(tg.Tasks, (*Task).Copy)
	if tg.Volumes != nil {
		c.Volumes = make(map[string]*VolumeRequest, len(tg.Volumes))
		for k, v := range tg.Volumes {
			c.Volumes[k] = v.Copy()
		}
	}
	c.RestartPolicy = tg.RestartPolicy.Copy()
	c.Disconnect = tg.Disconnect.Copy()
	c.ReschedulePolicy = tg.ReschedulePolicy.Copy()
	c.EphemeralDisk = tg.EphemeralDisk.Copy()
	c.Update = tg.Update.Copy()
	c.Migrate = tg.Migrate.Copy()
	c.Networks = copyPtrs(tg.Networks, (*NetworkResource).Copy)
	c.Meta = copyStringMap(tg.Meta)
	c.Services = copyPtrs(tg.Services, (*Service).Copy)
	c.Scaling = tg.Scaling.Copy()
	c.Consul = copyPtr(tg.Consul)
	return &c
}

// Copy returns a deep copy.
func (v *VolumeRequest) Copy() *VolumeRequest {
	if v == nil {
		return nil
	}
	c := *v
	if v.MountOptions != nil {
		c.MountOptions = &CSIMountOptions{
			FSType:     v.MountOptions.FSType,
			MountFlags: slices.Clone(v.MountOptions.MountFlags),
		}
	}
	return &c
}
