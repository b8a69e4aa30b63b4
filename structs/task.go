package structs

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// Task lifecycle hooks.
const (
	TaskLifecycleHookPrestart  = "prestart"
	TaskLifecycleHookPoststart = "poststart"
	TaskLifecycleHookPoststop  = "poststop"
)

// Volume mount propagation modes.
const (
	VolumeMountPropagationPrivate       = "private"
	VolumeMountPropagationHostToTask    = "host-to-task"
	VolumeMountPropagationBidirectional = "bidirectional"
)

// Template change modes.
const (
	TemplateChangeModeNoop    = "noop"
	TemplateChangeModeSignal  = "signal"
	TemplateChangeModeRestart = "restart"
	TemplateChangeModeScript  = "script"
)

// Artifact getter modes.
const (
	GetterModeAny  = "any"
	GetterModeFile = "file"
	GetterModeDir  = "dir"
)

// Defaults of task attributes, as Nomad's.
const (
	DefaultKillTimeout   = 5 * time.Second
	DefaultTemplateSplay = 5 * time.Second
	DefaultTemplatePerms = "0644"
)

// Task is one process run by a driver inside an allocation.
type Task struct {
	Name            string
	Driver          string
	User            string
	Lifecycle       *TaskLifecycleConfig
	Config          map[string]any
	Constraints     []*Constraint
	Affinities      []*Affinity
	Env             map[string]string
	Services        []*Service
	Resources       *Resources
	RestartPolicy   *RestartPolicy
	Meta            map[string]string
	KillTimeout     time.Duration
	LogConfig       *LogConfig
	Artifacts       []*TaskArtifact
	Vault           *Vault
	Consul          *Consul
	Templates       []*Template
	DispatchPayload *DispatchPayloadConfig
	VolumeMounts    []*VolumeMount
	CSIPluginConfig *TaskCSIPluginConfig `json:",omitempty"`
	Leader          bool
	ShutdownDelay   time.Duration
	KillSignal      string
	Kind            string
	ScalingPolicies []*ScalingPolicy
	Secrets         []*Secret
	Identity        *WorkloadIdentity
	Identities      []*WorkloadIdentity
	Actions         []*Action
	Schedule        *TaskSchedule
}

// TaskLifecycleConfig is the lifecycle block: when a task runs relative to
// the main tasks of its group.
type TaskLifecycleConfig struct {
	Hook    string
	Sidecar bool
}

// LogConfig is the logs block: rotation of a task's stdout/stderr files.
type LogConfig struct {
	MaxFiles      int
	MaxFileSizeMB int
	Disabled      bool
}

// DispatchPayloadConfig is where a dispatched job's payload is written.
type DispatchPayloadConfig struct {
	File string
}

// TaskArtifact is an artifact downloaded before the task starts.
type TaskArtifact struct {
	GetterSource   string
	GetterOptions  map[string]string
	GetterHeaders  map[string]string
	GetterMode     string
	GetterInsecure bool
	RelativeDest   string
	Chown          bool
}

// Template is a template block rendered into the task directory.
type Template struct {
	SourcePath    string
	DestPath      string
	EmbeddedTmpl  string
	ChangeMode    string
	ChangeScript  *ChangeScript
	ChangeSignal  string
	Once          bool
	Splay         time.Duration // 5s when missing or null in JSON
	Perms         string
	Uid           *int // nil: owned by the agent's user
	Gid           *int
	LeftDelim     string
	RightDelim    string
	Envvars       bool
	VaultGrace    time.Duration
	Wait          *WaitConfig
	ErrMissingKey bool
}

// UnmarshalJSON gives Splay its Nomad default of 5s when missing or null.
func (t *Template) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias Template
	a := (*alias)(t)
	a.Splay = DefaultTemplateSplay
	return json.Unmarshal(data, a)
}

// ChangeScript is run when a template with change_mode "script" changes.
type ChangeScript struct {
	Command          string
	Args             []string
	Timeout          time.Duration // 5s when missing or null in JSON
	FailOnError      bool
	RunOnFirstRender bool
}

// UnmarshalJSON gives Timeout its Nomad default of 5s when missing or null.
func (c *ChangeScript) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias ChangeScript
	a := (*alias)(c)
	a.Timeout = 5 * time.Second
	return json.Unmarshal(data, a)
}

// WaitConfig bounds how long template rendering waits for quiescence.
type WaitConfig struct {
	Min *time.Duration
	Max *time.Duration
}

// VolumeMount mounts a group volume into the task.
type VolumeMount struct {
	Volume          string
	Destination     string
	ReadOnly        bool
	PropagationMode string
	SELinuxLabel    string
}

// Vault is accepted for compatibility; berth has no Vault integration.
type Vault struct {
	Policies             []string
	Role                 string
	Namespace            string
	Cluster              string
	Env                  bool
	DisableFile          bool
	ChangeMode           string
	ChangeSignal         string
	AllowTokenExpiration bool
}

// Consul is accepted for compatibility; berth is Consul-free.
type Consul struct {
	Namespace string
	Cluster   string
	Partition string
}

// WorkloadIdentity is an identity block: a signed token given to the task.
type WorkloadIdentity struct {
	Name         string
	Audience     []string
	ChangeMode   string
	ChangeSignal string
	Env          bool
	File         bool
	Filepath     string
	ServiceName  string
	TTL          time.Duration
	ExtraClaims  []string
}

// Secret is a secret block: a value fetched from a provider for the task.
type Secret struct {
	Name     string
	Provider string
	Path     string
	Config   map[string]any
	Env      map[string]string
}

// Action is a named command operators may run in the task.
type Action struct {
	Name    string
	Command string
	Args    []string
}

// TaskSchedule limits when a task runs (Nomad Enterprise); accepted.
type TaskSchedule struct {
	Cron *TaskScheduleCron
}

// TaskScheduleCron is a schedule window.
type TaskScheduleCron struct {
	Start    string
	End      string
	Timezone string
}

// TaskCSIPluginConfig marks a task as a CSI plugin.
type TaskCSIPluginConfig struct {
	ID                  string
	Type                string
	MountDir            string
	StagePublishBaseDir string
	HealthTimeout       time.Duration
}

// IsPrestart reports whether the task runs before the main tasks.
func (t *Task) IsPrestart() bool {
	return t.Lifecycle != nil && t.Lifecycle.Hook == TaskLifecycleHookPrestart
}

// IsPoststart reports whether the task runs after the main tasks started.
func (t *Task) IsPoststart() bool {
	return t.Lifecycle != nil && t.Lifecycle.Hook == TaskLifecycleHookPoststart
}

// IsPoststop reports whether the task runs after the main tasks stopped.
func (t *Task) IsPoststop() bool {
	return t.Lifecycle != nil && t.Lifecycle.Hook == TaskLifecycleHookPoststop
}

// IsMain reports whether the task is a main task (no lifecycle hook).
func (t *Task) IsMain() bool { return t.Lifecycle == nil }

// Copy returns a deep copy of the task.
func (t *Task) Copy() *Task {
	if t == nil {
		return nil
	}
	c := *t
	c.Lifecycle = copyPtr(t.Lifecycle)
	c.Config = copyAnyMap(t.Config)
	c.Constraints = copyPtrs(t.Constraints, (*Constraint).Copy)
	c.Affinities = copyPtrs(t.Affinities, (*Affinity).Copy)
	c.Env = copyStringMap(t.Env)
	c.Services = copyPtrs(t.Services, (*Service).Copy)
	c.Resources = t.Resources.Copy()
	c.RestartPolicy = t.RestartPolicy.Copy()
	c.Meta = copyStringMap(t.Meta)
	c.LogConfig = t.LogConfig.Copy()
	c.Artifacts = copyPtrs(t.Artifacts, (*TaskArtifact).Copy)
	c.Vault = t.Vault.Copy()
	c.Consul = copyPtr(t.Consul)
	c.Templates = copyPtrs(t.Templates, (*Template).Copy)
	c.DispatchPayload = copyPtr(t.DispatchPayload)
	c.VolumeMounts = copyPtrs(t.VolumeMounts, copyPtr[VolumeMount])
	c.CSIPluginConfig = copyPtr(t.CSIPluginConfig)
	c.ScalingPolicies = copyPtrs(t.ScalingPolicies, (*ScalingPolicy).Copy)
	c.Secrets = copyPtrs(t.Secrets, (*Secret).Copy)
	c.Identity = t.Identity.Copy()
	c.Identities = copyPtrs(t.Identities, (*WorkloadIdentity).Copy)
	c.Actions = copyPtrs(t.Actions, func(a *Action) *Action {
		ac := *a
		ac.Args = slices.Clone(a.Args)
		return &ac
	})
	if t.Schedule != nil {
		c.Schedule = &TaskSchedule{Cron: copyPtr(t.Schedule.Cron)}
	}
	return &c
}

// Copy returns a copy.
func (l *LogConfig) Copy() *LogConfig { return copyPtr(l) }

// Copy returns a deep copy.
func (a *TaskArtifact) Copy() *TaskArtifact {
	if a == nil {
		return nil
	}
	c := *a
	c.GetterOptions = copyStringMap(a.GetterOptions)
	c.GetterHeaders = copyStringMap(a.GetterHeaders)
	return &c
}

// Copy returns a deep copy.
func (t *Template) Copy() *Template {
	if t == nil {
		return nil
	}
	c := *t
	if t.ChangeScript != nil {
		cs := *t.ChangeScript
		cs.Args = slices.Clone(t.ChangeScript.Args)
		c.ChangeScript = &cs
	}
	c.Uid = copyPtr(t.Uid)
	c.Gid = copyPtr(t.Gid)
	if t.Wait != nil {
		c.Wait = &WaitConfig{Min: copyPtr(t.Wait.Min), Max: copyPtr(t.Wait.Max)}
	}
	return &c
}

// Copy returns a deep copy.
func (v *Vault) Copy() *Vault {
	if v == nil {
		return nil
	}
	c := *v
	c.Policies = slices.Clone(v.Policies)
	return &c
}

// Copy returns a deep copy.
func (w *WorkloadIdentity) Copy() *WorkloadIdentity {
	if w == nil {
		return nil
	}
	c := *w
	c.Audience = slices.Clone(w.Audience)
	c.ExtraClaims = slices.Clone(w.ExtraClaims)
	return &c
}

// Copy returns a deep copy.
func (s *Secret) Copy() *Secret {
	if s == nil {
		return nil
	}
	c := *s
	c.Config = copyAnyMap(s.Config)
	c.Env = maps.Clone(s.Env)
	return &c
}
