package structs

import (
	"encoding/json"
	"maps"
	"slices"
)

// Job types.
const (
	JobTypeService  = "service"
	JobTypeBatch    = "batch"
	JobTypeSystem   = "system"
	JobTypeSysBatch = "sysbatch"
)

// Job statuses.
const (
	JobStatusPending = "pending"
	JobStatusRunning = "running"
	JobStatusDead    = "dead"
)

// Job defaults and limits, as Nomad's.
const (
	JobDefaultPriority = 50
	JobMinPriority     = 1
	JobMaxPriority     = 100
	GlobalRegion       = "global"
	DefaultNodePool    = "default"
	// AllDatacenters is the datacenter wildcard jobs get when they name none.
	AllDatacenters = "*"
)

// Job is the unit a user submits: one or more task groups and how to run
// them. Field names and JSON shape follow Nomad's /v1 API (api.Job).
type Job struct {
	Region           string
	Namespace        string
	ID               string
	Name             string
	Type             string
	Priority         int // 50 when missing or null in JSON
	AllAtOnce        bool
	Datacenters      []string
	NodePool         string
	Constraints      []*Constraint
	Affinities       []*Affinity
	Spreads          []*Spread
	TaskGroups       []*TaskGroup
	Update           *UpdateStrategy
	Multiregion      *Multiregion
	Periodic         *PeriodicConfig
	ParameterizedJob *ParameterizedJobConfig
	Reschedule       *ReschedulePolicy
	Migrate          *MigrateStrategy
	Meta             map[string]string
	UI               *JobUIConfig

	// Set by the server or by dispatch, not by job files.
	Stop                     bool
	ParentID                 string
	Dispatched               bool
	DispatchIdempotencyToken string
	Payload                  []byte
	ConsulNamespace          string
	VaultNamespace           string
	Status                   string
	StatusDescription        string
	Stable                   bool
	Version                  uint64
	VersionTag               *JobVersionTag
	SubmitTime               int64
	CreateIndex              uint64
	ModifyIndex              uint64
	JobModifyIndex           uint64
}

// Multiregion is accepted and stored for compatibility; berth does not
// federate regions.
type Multiregion struct {
	Strategy *MultiregionStrategy
	Regions  []*MultiregionRegion
}

// MultiregionStrategy is the rollout strategy across regions.
type MultiregionStrategy struct {
	MaxParallel int
	OnFailure   string
}

// MultiregionRegion is one region of a multiregion job.
type MultiregionRegion struct {
	Name        string
	Count       int
	Datacenters []string
	NodePool    string
	Meta        map[string]string
}

// JobUIConfig is the job's ui block: a description and links for the web UI.
type JobUIConfig struct {
	Description string
	Links       []*JobUILink
}

// JobUILink is one link shown in the web UI.
type JobUILink struct {
	Label string
	URL   string
}

// JobVersionTag names a job version.
type JobVersionTag struct {
	Name        string
	Description string
	TaggedTime  int64
}

// UnmarshalJSON decodes a job the way Nomad's server reads one from its own
// clients: a missing or null Priority is 50, and policy blocks given only in
// part (a Nomad client sends null for every attribute a job file left out)
// are completed from Nomad's defaults for the job type and from the
// enclosing job or group, exactly as api.Job.Canonicalize merges them.
// Explicit zero values are kept.
func (j *Job) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias Job
	a := (*alias)(j)
	a.Priority = JobDefaultPriority
	if err := json.Unmarshal(data, a); err != nil {
		return err
	}
	return j.completePartialPolicies(data)
}

// policyProbe captures the raw policy blocks of a job so that fields the
// client left null can be told apart from explicit zeros.
type policyProbe struct {
	Update     json.RawMessage
	Reschedule json.RawMessage
	Migrate    json.RawMessage
	TaskGroups []struct {
		Update           json.RawMessage
		ReschedulePolicy json.RawMessage
		Migrate          json.RawMessage
		RestartPolicy    json.RawMessage
		Tasks            []struct {
			RestartPolicy json.RawMessage
		}
	}
}

func given(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// overlay decodes raw over a copy of base, so that attributes missing from raw
// keep base's value.
func overlay[T any](base *T, raw json.RawMessage) (*T, error) {
	if err := json.Unmarshal(raw, base); err != nil {
		return nil, err
	}
	return base, nil
}

func (j *Job) completePartialPolicies(data []byte) error {
	var p policyProbe
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	typ := j.Type
	if typ == "" {
		typ = JobTypeService
	}
	var err error
	if given(p.Update) {
		if j.Update, err = overlay(DefaultUpdateStrategy(), p.Update); err != nil {
			return err
		}
	}
	if given(p.Reschedule) {
		if j.Reschedule, err = overlay(orDefault(DefaultReschedulePolicy(typ), &ReschedulePolicy{}), p.Reschedule); err != nil {
			return err
		}
	}
	if given(p.Migrate) {
		if j.Migrate, err = overlay(DefaultMigrateStrategy(), p.Migrate); err != nil {
			return err
		}
	}
	for i, pg := range p.TaskGroups {
		if i >= len(j.TaskGroups) || j.TaskGroups[i] == nil {
			continue
		}
		tg := j.TaskGroups[i]
		if given(pg.Update) {
			if tg.Update, err = overlay(orDefault(j.Update.Copy(), DefaultUpdateStrategy()), pg.Update); err != nil {
				return err
			}
		}
		if given(pg.ReschedulePolicy) {
			base := orDefault(j.Reschedule.Copy(), orDefault(DefaultReschedulePolicy(typ), &ReschedulePolicy{}))
			if tg.ReschedulePolicy, err = overlay(base, pg.ReschedulePolicy); err != nil {
				return err
			}
		}
		if given(pg.Migrate) {
			if tg.Migrate, err = overlay(orDefault(j.Migrate.Copy(), DefaultMigrateStrategy()), pg.Migrate); err != nil {
				return err
			}
		}
		if given(pg.RestartPolicy) {
			if tg.RestartPolicy, err = overlay(DefaultRestartPolicy(typ), pg.RestartPolicy); err != nil {
				return err
			}
		}
		for k, pt := range pg.Tasks {
			if k >= len(tg.Tasks) || tg.Tasks[k] == nil || !given(pt.RestartPolicy) {
				continue
			}
			base := orDefault(tg.RestartPolicy.Copy(), DefaultRestartPolicy(typ))
			if tg.Tasks[k].RestartPolicy, err = overlay(base, pt.RestartPolicy); err != nil {
				return err
			}
		}
	}
	return nil
}

func orDefault[T any](v, def *T) *T {
	if v != nil {
		return v
	}
	return def
}

// LookupTaskGroup returns the group with the given name, or nil.
func (j *Job) LookupTaskGroup(name string) *TaskGroup {
	for _, tg := range j.TaskGroups {
		if tg != nil && tg.Name == name {
			return tg
		}
	}
	return nil
}

// IsPeriodic reports whether the job has a periodic block.
func (j *Job) IsPeriodic() bool { return j.Periodic != nil }

// IsPeriodicActive reports whether the job launches children on a schedule.
func (j *Job) IsPeriodicActive() bool {
	return j.Periodic != nil && j.Periodic.Enabled && !j.Stop
}

// IsParameterized reports whether the job is a parameterized template (not a
// dispatched child of one).
func (j *Job) IsParameterized() bool {
	return j.ParameterizedJob != nil && !j.Dispatched
}

// IsMultiregion reports whether the job names more than its own region.
func (j *Job) IsMultiregion() bool {
	return j.Multiregion != nil && len(j.Multiregion.Regions) > 0
}

// Stub returns the short form of the job listed by GET /v1/jobs.
func (j *Job) Stub(summary *JobSummary) *JobListStub {
	return &JobListStub{
		ID:                j.ID,
		ParentID:          j.ParentID,
		Name:              j.Name,
		Namespace:         j.Namespace,
		Datacenters:       slices.Clone(j.Datacenters),
		NodePool:          j.NodePool,
		Type:              j.Type,
		Priority:          j.Priority,
		Periodic:          j.IsPeriodic(),
		ParameterizedJob:  j.IsParameterized(),
		Stop:              j.Stop,
		Status:            j.Status,
		StatusDescription: j.StatusDescription,
		JobSummary:        summary,
		CreateIndex:       j.CreateIndex,
		ModifyIndex:       j.ModifyIndex,
		JobModifyIndex:    j.JobModifyIndex,
		SubmitTime:        j.SubmitTime,
		Meta:              copyStringMap(j.Meta),
	}
}

// Copy returns a deep copy of the job.
func (j *Job) Copy() *Job {
	if j == nil {
		return nil
	}
	c := *j
	c.Datacenters = slices.Clone(j.Datacenters)
	c.Constraints = copyPtrs(j.Constraints, (*Constraint).Copy)
	c.Affinities = copyPtrs(j.Affinities, (*Affinity).Copy)
	c.Spreads = copyPtrs(j.Spreads, (*Spread).Copy)
	c.TaskGroups = copyPtrs(j.TaskGroups, (*TaskGroup).Copy)
	c.Update = j.Update.Copy()
	c.Multiregion = j.Multiregion.Copy()
	c.Periodic = j.Periodic.Copy()
	c.ParameterizedJob = j.ParameterizedJob.Copy()
	c.Reschedule = j.Reschedule.Copy()
	c.Migrate = j.Migrate.Copy()
	c.Meta = copyStringMap(j.Meta)
	c.UI = j.UI.Copy()
	c.Payload = slices.Clone(j.Payload)
	c.VersionTag = copyPtr(j.VersionTag)
	return &c
}

// Copy returns a deep copy.
func (m *Multiregion) Copy() *Multiregion {
	if m == nil {
		return nil
	}
	c := &Multiregion{Strategy: copyPtr(m.Strategy)}
	c.Regions = copyPtrs(m.Regions, func(r *MultiregionRegion) *MultiregionRegion {
		rc := *r
		rc.Datacenters = slices.Clone(r.Datacenters)
		rc.Meta = copyStringMap(r.Meta)
		return &rc
	})
	return c
}

// Copy returns a deep copy.
func (u *JobUIConfig) Copy() *JobUIConfig {
	if u == nil {
		return nil
	}
	c := *u
	c.Links = copyPtrs(u.Links, copyPtr[JobUILink])
	return &c
}

// copyPtr returns a shallow copy of *p (nil for nil): enough for structs of
// scalars only.
func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// copyPtrs copies a slice of pointers with fn, keeping nil elements nil.
func copyPtrs[T any](s []*T, fn func(*T) *T) []*T {
	if s == nil {
		return nil
	}
	c := make([]*T, len(s))
	for i, v := range s {
		if v != nil {
			c[i] = fn(v)
		}
	}
	return c
}

// copyAnyMap deep-copies a decoded-JSON-like map (driver config, policy
// blobs): nested maps and slices are copied, other values shared.
func copyAnyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = copyAny(v)
	}
	return c
}

func copyAny(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return copyAnyMap(t)
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = copyAny(e)
		}
		return c
	case []map[string]any:
		c := make([]map[string]any, len(t))
		for i, e := range t {
			c[i] = copyAnyMap(e)
		}
		return c
	case []string:
		return slices.Clone(t)
	case map[string]string:
		return maps.Clone(t)
	default:
		return v
	}
}
