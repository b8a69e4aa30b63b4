package structs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Restart modes.
const (
	RestartPolicyModeDelay = "delay"
	RestartPolicyModeFail  = "fail"
)

// Reschedule delay functions.
const (
	DelayFunctionConstant    = "constant"
	DelayFunctionExponential = "exponential"
	DelayFunctionFibonacci   = "fibonacci"
)

// Health checks used by update and migrate strategies.
const (
	UpdateStrategyHealthCheckChecks     = "checks"
	UpdateStrategyHealthCheckTaskStates = "task_states"
	UpdateStrategyHealthCheckManual     = "manual"
)

// Periodic spec types.
const PeriodicSpecCron = "cron"

// Parameterized payload requirements.
const (
	DispatchPayloadOptional  = "optional"
	DispatchPayloadRequired  = "required"
	DispatchPayloadForbidden = "forbidden"
)

// Disconnect reconcile options.
const (
	ReconcileOptionKeepOriginal    = "keep_original"
	ReconcileOptionKeepReplacement = "keep_replacement"
	ReconcileOptionBestScore       = "best_score"
	ReconcileOptionLongestRunning  = "longest_running"
)

// Scaling policy types.
const (
	ScalingPolicyTypeHorizontal  = "horizontal"
	ScalingPolicyTypeVerticalCPU = "vertical_cpu"
	ScalingPolicyTypeVerticalMem = "vertical_mem"
)

// Minimums Nomad enforces.
const (
	RestartPolicyMinInterval    = 5 * time.Second
	ReschedulePolicyMinDelay    = 5 * time.Second
	ReschedulePolicyMinInterval = 15 * time.Second
	DefaultEphemeralDiskSizeMB  = 300
	DefaultLogMaxFiles          = 10
	DefaultLogMaxFileSizeMB     = 10
)

// RestartPolicy is the restart block: how the agent restarts failed tasks
// in place.
type RestartPolicy struct {
	Attempts        int
	Interval        time.Duration
	Delay           time.Duration
	Mode            string
	RenderTemplates bool
}

// ReschedulePolicy is the reschedule block: how the servers replace failed
// allocations on other nodes.
type ReschedulePolicy struct {
	Attempts      int
	Interval      time.Duration
	Delay         time.Duration
	DelayFunction string
	MaxDelay      time.Duration
	Unlimited     bool
}

// UpdateStrategy is the update block: rolling, canary and blue/green
// deployments.
type UpdateStrategy struct {
	Stagger          time.Duration
	MaxParallel      int
	HealthCheck      string
	MinHealthyTime   time.Duration
	HealthyDeadline  time.Duration
	ProgressDeadline time.Duration
	Canary           int
	AutoRevert       bool
	AutoPromote      bool
}

// MigrateStrategy is the migrate block: how allocations leave a draining
// node.
type MigrateStrategy struct {
	MaxParallel     int
	HealthCheck     string
	MinHealthyTime  time.Duration
	HealthyDeadline time.Duration
}

// PeriodicConfig is the periodic block: launch a child job on a schedule.
type PeriodicConfig struct {
	Enabled         bool // true when missing or null in JSON
	Spec            string
	Specs           []string
	SpecType        string
	ProhibitOverlap bool
	TimeZone        string
}

// UnmarshalJSON gives Enabled its Nomad default of true when missing or null.
func (p *PeriodicConfig) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias PeriodicConfig
	a := (*alias)(p)
	a.Enabled = true
	return json.Unmarshal(data, a)
}

// AllSpecs returns Spec and Specs together.
func (p *PeriodicConfig) AllSpecs() []string {
	var s []string
	if p.Spec != "" {
		s = append(s, p.Spec)
	}
	return append(s, p.Specs...)
}

// ParameterizedJobConfig is the parameterized block: a job that is a
// template for dispatched children.
type ParameterizedJobConfig struct {
	Payload      string
	MetaRequired []string
	MetaOptional []string
}

// EphemeralDisk is the ephemeral_disk block.
type EphemeralDisk struct {
	Sticky  bool
	Migrate bool
	SizeMB  int
}

// DisconnectStrategy is the disconnect block: what happens to allocations
// on a node that stops heartbeating.
type DisconnectStrategy struct {
	LostAfter         time.Duration
	StopOnClientAfter time.Duration
	Replace           bool // true when missing or null in JSON
	Reconcile         string
}

// UnmarshalJSON gives Replace its Nomad default of true when missing or null.
func (d *DisconnectStrategy) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias DisconnectStrategy
	a := (*alias)(d)
	a.Replace = true
	return json.Unmarshal(data, a)
}

// ScalingPolicy is the scaling block of a group (horizontal) or task
// (vertical).
type ScalingPolicy struct {
	Min     int64 // the group count when missing or null in a group's JSON
	Max     int64
	Policy  map[string]any
	Enabled bool // true when missing or null in JSON
	Type    string

	// Set by the server.
	ID          string
	Namespace   string
	Target      map[string]string
	CreateIndex uint64
	ModifyIndex uint64
}

// UnmarshalJSON gives Enabled its Nomad default of true when missing or null.
func (s *ScalingPolicy) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias ScalingPolicy
	a := (*alias)(s)
	a.Enabled = true
	return json.Unmarshal(data, a)
}

// DefaultRestartPolicy returns Nomad's restart defaults for a job type:
// service and system jobs 2 attempts in 30m, batch and sysbatch 3 in 24h,
// both with a 15s delay and mode "fail".
func DefaultRestartPolicy(jobType string) *RestartPolicy {
	switch jobType {
	case JobTypeService, JobTypeSystem, "":
		return &RestartPolicy{Attempts: 2, Interval: 30 * time.Minute, Delay: 15 * time.Second, Mode: RestartPolicyModeFail}
	default:
		return &RestartPolicy{Attempts: 3, Interval: 24 * time.Hour, Delay: 15 * time.Second, Mode: RestartPolicyModeFail}
	}
}

// DefaultReschedulePolicy returns Nomad's reschedule defaults for a job
// type, or nil for system and sysbatch jobs, which are not rescheduled.
func DefaultReschedulePolicy(jobType string) *ReschedulePolicy {
	switch jobType {
	case JobTypeService, "":
		return &ReschedulePolicy{Delay: 30 * time.Second, DelayFunction: DelayFunctionExponential, MaxDelay: time.Hour, Unlimited: true}
	case JobTypeBatch:
		return &ReschedulePolicy{Attempts: 1, Interval: 24 * time.Hour, Delay: 5 * time.Second, DelayFunction: DelayFunctionConstant}
	default:
		return nil
	}
}

// DefaultUpdateStrategy returns Nomad's update defaults.
func DefaultUpdateStrategy() *UpdateStrategy {
	return &UpdateStrategy{
		Stagger:          30 * time.Second,
		MaxParallel:      1,
		HealthCheck:      UpdateStrategyHealthCheckChecks,
		MinHealthyTime:   10 * time.Second,
		HealthyDeadline:  5 * time.Minute,
		ProgressDeadline: 10 * time.Minute,
	}
}

// DefaultMigrateStrategy returns Nomad's migrate defaults.
func DefaultMigrateStrategy() *MigrateStrategy {
	return &MigrateStrategy{
		MaxParallel:     1,
		HealthCheck:     UpdateStrategyHealthCheckChecks,
		MinHealthyTime:  10 * time.Second,
		HealthyDeadline: 5 * time.Minute,
	}
}

// DefaultEphemeralDisk returns a 300 MB, non-sticky ephemeral disk.
func DefaultEphemeralDisk() *EphemeralDisk {
	return &EphemeralDisk{SizeMB: DefaultEphemeralDiskSizeMB}
}

// DefaultLogConfig returns Nomad's log rotation defaults: 10 files of 10 MB.
func DefaultLogConfig() *LogConfig {
	return &LogConfig{MaxFiles: DefaultLogMaxFiles, MaxFileSizeMB: DefaultLogMaxFileSizeMB}
}

// DefaultDisconnectStrategy returns Nomad's disconnect defaults.
func DefaultDisconnectStrategy() *DisconnectStrategy {
	return &DisconnectStrategy{Replace: true, Reconcile: ReconcileOptionBestScore}
}

// Enabled reports whether the policy reschedules at all.
func (r *ReschedulePolicy) Enabled() bool {
	return r != nil && (r.Attempts > 0 || r.Unlimited)
}

// Copy returns a copy.
func (r *RestartPolicy) Copy() *RestartPolicy { return copyPtr(r) }

// Copy returns a copy.
func (r *ReschedulePolicy) Copy() *ReschedulePolicy { return copyPtr(r) }

// Copy returns a copy.
func (u *UpdateStrategy) Copy() *UpdateStrategy { return copyPtr(u) }

// Copy returns a copy.
func (m *MigrateStrategy) Copy() *MigrateStrategy { return copyPtr(m) }

// Copy returns a copy.
func (e *EphemeralDisk) Copy() *EphemeralDisk { return copyPtr(e) }

// Copy returns a copy.
func (d *DisconnectStrategy) Copy() *DisconnectStrategy { return copyPtr(d) }

// Copy returns a deep copy.
func (p *PeriodicConfig) Copy() *PeriodicConfig {
	if p == nil {
		return nil
	}
	c := *p
	c.Specs = slices.Clone(p.Specs)
	return &c
}

// Copy returns a deep copy.
func (p *ParameterizedJobConfig) Copy() *ParameterizedJobConfig {
	if p == nil {
		return nil
	}
	c := *p
	c.MetaRequired = slices.Clone(p.MetaRequired)
	c.MetaOptional = slices.Clone(p.MetaOptional)
	return &c
}

// Copy returns a deep copy.
func (s *ScalingPolicy) Copy() *ScalingPolicy {
	if s == nil {
		return nil
	}
	c := *s
	c.Policy = copyAnyMap(s.Policy)
	c.Target = copyStringMap(s.Target)
	return &c
}

// Validate reports every problem with the restart block.
func (r *RestartPolicy) Validate() error { return r.validate(true) }

// validate checks the policy; checkBudget adds the group-level rule that
// all attempts fit into one interval. Nomad does not apply that rule to a
// task's own restart block, and real job files rely on it.
func (r *RestartPolicy) validate(checkBudget bool) error {
	var errs []error
	switch r.Mode {
	case RestartPolicyModeDelay, RestartPolicyModeFail:
	default:
		errs = append(errs, fmt.Errorf("unsupported restart mode %q, must be %q or %q", r.Mode, RestartPolicyModeDelay, RestartPolicyModeFail))
	}
	if r.Attempts < 0 {
		errs = append(errs, fmt.Errorf("restart attempts must not be negative, got %d", r.Attempts))
	}
	if r.Attempts == 0 && r.Mode != RestartPolicyModeFail {
		errs = append(errs, fmt.Errorf("restart mode %q with 0 attempts is ambiguous", r.Mode))
	}
	if r.Delay < 0 {
		errs = append(errs, fmt.Errorf("restart delay must not be negative, got %v", r.Delay))
	}
	if r.Interval < 0 {
		errs = append(errs, fmt.Errorf("restart interval must not be negative, got %v", r.Interval))
	} else if r.Interval != 0 && r.Interval < RestartPolicyMinInterval {
		errs = append(errs, fmt.Errorf("restart interval cannot be less than %v, got %v", RestartPolicyMinInterval, r.Interval))
	}
	if checkBudget && r.Interval > 0 && r.Delay >= 0 && time.Duration(r.Attempts)*r.Delay > r.Interval {
		errs = append(errs, fmt.Errorf("cannot restart %d times in an interval of %v with a delay of %v", r.Attempts, r.Interval, r.Delay))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the reschedule block.
func (r *ReschedulePolicy) Validate() error {
	var errs []error
	if r.Attempts < 0 {
		errs = append(errs, fmt.Errorf("reschedule attempts must not be negative, got %d", r.Attempts))
	}
	if r.Interval < 0 || r.Delay < 0 || r.MaxDelay < 0 {
		errs = append(errs, errors.New("reschedule durations must not be negative"))
	}
	if !r.Enabled() {
		return errors.Join(errs...)
	}
	if r.Attempts > 0 && r.Unlimited {
		errs = append(errs, fmt.Errorf("reschedule with attempts = %d and unlimited = true is ambiguous", r.Attempts))
	}
	if r.Delay < ReschedulePolicyMinDelay {
		errs = append(errs, fmt.Errorf("reschedule delay cannot be less than %v, got %v", ReschedulePolicyMinDelay, r.Delay))
	}
	switch r.DelayFunction {
	case DelayFunctionConstant:
	case DelayFunctionExponential, DelayFunctionFibonacci:
		if r.MaxDelay < ReschedulePolicyMinDelay {
			errs = append(errs, fmt.Errorf("reschedule max_delay cannot be less than %v, got %v", ReschedulePolicyMinDelay, r.MaxDelay))
		} else if r.MaxDelay < r.Delay {
			errs = append(errs, fmt.Errorf("reschedule max_delay (%v) cannot be less than delay (%v)", r.MaxDelay, r.Delay))
		}
	default:
		errs = append(errs, fmt.Errorf("invalid reschedule delay_function %q, must be one of %q, %q, %q",
			r.DelayFunction, DelayFunctionConstant, DelayFunctionExponential, DelayFunctionFibonacci))
	}
	if !r.Unlimited && r.Interval < ReschedulePolicyMinInterval {
		errs = append(errs, fmt.Errorf("reschedule interval cannot be less than %v, got %v", ReschedulePolicyMinInterval, r.Interval))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the update block.
func (u *UpdateStrategy) Validate() error {
	var errs []error
	switch u.HealthCheck {
	case UpdateStrategyHealthCheckChecks, UpdateStrategyHealthCheckTaskStates, UpdateStrategyHealthCheckManual:
	default:
		errs = append(errs, fmt.Errorf("invalid update health_check %q", u.HealthCheck))
	}
	if u.MaxParallel < 0 {
		errs = append(errs, fmt.Errorf("update max_parallel must not be negative, got %d", u.MaxParallel))
	}
	if u.Canary < 0 {
		errs = append(errs, fmt.Errorf("update canary must not be negative, got %d", u.Canary))
	}
	if u.Canary == 0 && u.AutoPromote {
		errs = append(errs, errors.New("update auto_promote requires a canary count greater than zero"))
	}
	if u.MinHealthyTime < 0 {
		errs = append(errs, fmt.Errorf("update min_healthy_time must not be negative, got %v", u.MinHealthyTime))
	}
	if u.HealthyDeadline <= 0 {
		errs = append(errs, fmt.Errorf("update healthy_deadline must be greater than zero, got %v", u.HealthyDeadline))
	}
	if u.ProgressDeadline < 0 {
		errs = append(errs, fmt.Errorf("update progress_deadline must not be negative, got %v", u.ProgressDeadline))
	}
	if u.MinHealthyTime >= u.HealthyDeadline {
		errs = append(errs, fmt.Errorf("update min_healthy_time (%v) must be less than healthy_deadline (%v)", u.MinHealthyTime, u.HealthyDeadline))
	}
	if u.ProgressDeadline != 0 && u.HealthyDeadline >= u.ProgressDeadline {
		errs = append(errs, fmt.Errorf("update healthy_deadline (%v) must be less than progress_deadline (%v)", u.HealthyDeadline, u.ProgressDeadline))
	}
	if u.Stagger <= 0 {
		errs = append(errs, fmt.Errorf("update stagger must be greater than zero, got %v", u.Stagger))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the migrate block.
func (m *MigrateStrategy) Validate() error {
	var errs []error
	if m.MaxParallel < 0 {
		errs = append(errs, fmt.Errorf("migrate max_parallel must not be negative, got %d", m.MaxParallel))
	}
	switch m.HealthCheck {
	case UpdateStrategyHealthCheckChecks, UpdateStrategyHealthCheckTaskStates:
	default:
		errs = append(errs, fmt.Errorf("invalid migrate health_check %q", m.HealthCheck))
	}
	if m.MinHealthyTime < 0 || m.HealthyDeadline < 0 {
		errs = append(errs, errors.New("migrate durations must not be negative"))
	}
	if m.MinHealthyTime > m.HealthyDeadline {
		errs = append(errs, fmt.Errorf("migrate min_healthy_time (%v) must not exceed healthy_deadline (%v)", m.MinHealthyTime, m.HealthyDeadline))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the disconnect block.
func (d *DisconnectStrategy) Validate() error {
	var errs []error
	if d.LostAfter < 0 {
		errs = append(errs, fmt.Errorf("disconnect lost_after must not be negative, got %v", d.LostAfter))
	}
	if d.StopOnClientAfter < 0 {
		errs = append(errs, fmt.Errorf("disconnect stop_on_client_after must not be negative, got %v", d.StopOnClientAfter))
	}
	if d.LostAfter > 0 && d.StopOnClientAfter > 0 {
		errs = append(errs, errors.New("disconnect lost_after and stop_on_client_after cannot both be set"))
	}
	switch d.Reconcile {
	case "", ReconcileOptionBestScore, ReconcileOptionKeepOriginal, ReconcileOptionKeepReplacement, ReconcileOptionLongestRunning:
	default:
		errs = append(errs, fmt.Errorf("invalid disconnect reconcile %q", d.Reconcile))
	}
	return errors.Join(errs...)
}
