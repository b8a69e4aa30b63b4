package structs

// DesiredTransition is what the servers want to happen to an allocation
// next, set by the drainer, `alloc stop` and `job eval -force-reschedule`
// and honoured by the scheduler. Nomad's shape: nil means "not asked".
type DesiredTransition struct {
	// Migrate: stop the allocation and place a replacement elsewhere.
	Migrate *bool `json:",omitempty"`
	// Reschedule: the allocation may be rescheduled.
	Reschedule *bool `json:",omitempty"`
	// ForceReschedule: reschedule now, whatever the reschedule policy.
	ForceReschedule *bool `json:",omitempty"`
}

// ShouldMigrate reports whether the allocation is to be migrated.
func (d DesiredTransition) ShouldMigrate() bool { return d.Migrate != nil && *d.Migrate }

// ShouldForceReschedule reports whether a reschedule is forced.
func (d DesiredTransition) ShouldForceReschedule() bool {
	return d.ForceReschedule != nil && *d.ForceReschedule
}

// Merge sets the fields of o that are set on d.
func (d *DesiredTransition) Merge(o *DesiredTransition) {
	if o == nil {
		return
	}
	if o.Migrate != nil {
		d.Migrate = boolPtr(*o.Migrate)
	}
	if o.Reschedule != nil {
		d.Reschedule = boolPtr(*o.Reschedule)
	}
	if o.ForceReschedule != nil {
		d.ForceReschedule = boolPtr(*o.ForceReschedule)
	}
}

func boolPtr(b bool) *bool { return &b }
