package structs

import (
	"fmt"
	"path"
	"strings"
)

// Canonicalize fills every default Nomad fills when it accepts a job (the
// union of api.Job.Canonicalize and the server's own), so that what is
// stored and scheduled is explicit. It is idempotent.
//
// Defaults are filled where a field is nil or where its zero value is not a
// valid setting (an empty mode, a zero weight, zero CPU and cores). Zero
// values that mean something (a group count of 0, restart attempts of 0,
// update max_parallel of 0) are kept: JSON decoding (Job.UnmarshalJSON and
// friends) fills those from Nomad's defaults when a client leaves them out,
// and code that builds jobs in Go should start partial blocks from
// DefaultRestartPolicy, DefaultUpdateStrategy and the like.
func (j *Job) Canonicalize() {
	if j == nil {
		return
	}
	if j.Namespace == "" {
		j.Namespace = DefaultNamespace
	}
	if j.Region == "" {
		j.Region = GlobalRegion
	}
	if j.Type == "" {
		j.Type = JobTypeService
	}
	if j.Priority == 0 {
		j.Priority = JobDefaultPriority
	}
	if j.Name == "" {
		j.Name = j.ID
	}
	if len(j.Datacenters) == 0 {
		j.Datacenters = []string{AllDatacenters}
	}
	if j.NodePool == "" {
		j.NodePool = DefaultNodePool
	}
	if len(j.Meta) == 0 {
		j.Meta = nil
	}
	canonicalizeConstraints(j.Constraints)
	canonicalizeAffinities(j.Affinities)
	canonicalizeSpreads(j.Spreads)

	if j.Update == nil && (j.Type == JobTypeService || j.Type == JobTypeSystem) {
		j.Update = DefaultUpdateStrategy()
	}
	j.Update.canonicalize()
	if p := j.Periodic; p != nil {
		if p.SpecType == "" {
			p.SpecType = PeriodicSpecCron
		}
		if p.TimeZone == "" {
			p.TimeZone = "UTC"
		}
	}
	if p := j.ParameterizedJob; p != nil && p.Payload == "" {
		p.Payload = DispatchPayloadOptional
	}
	j.Reschedule.canonicalize(j.Type)
	j.Migrate.canonicalize()
	for _, tg := range j.TaskGroups {
		if tg != nil {
			tg.canonicalize(j)
		}
	}
}

func (tg *TaskGroup) canonicalize(j *Job) {
	if len(tg.Meta) == 0 {
		tg.Meta = nil
	}
	canonicalizeConstraints(tg.Constraints)
	canonicalizeAffinities(tg.Affinities)
	canonicalizeSpreads(tg.Spreads)

	if tg.Update == nil && j.Update != nil {
		tg.Update = j.Update.Copy()
	}
	tg.Update.canonicalize()

	if j.Type != JobTypeSystem && j.Type != JobTypeSysBatch {
		if tg.ReschedulePolicy == nil {
			tg.ReschedulePolicy = orDefault(j.Reschedule.Copy(), DefaultReschedulePolicy(j.Type))
		}
		tg.ReschedulePolicy.canonicalize(j.Type)
	}

	if tg.Migrate == nil && j.Migrate != nil {
		tg.Migrate = j.Migrate.Copy()
	}
	if tg.Migrate == nil && j.Type == JobTypeService {
		tg.Migrate = DefaultMigrateStrategy()
	}
	tg.Migrate.canonicalize()

	if tg.RestartPolicy == nil {
		tg.RestartPolicy = DefaultRestartPolicy(j.Type)
	}
	if tg.RestartPolicy.Mode == "" {
		tg.RestartPolicy.Mode = RestartPolicyModeFail
	}

	if tg.EphemeralDisk == nil {
		tg.EphemeralDisk = DefaultEphemeralDisk()
	}
	if tg.EphemeralDisk.SizeMB == 0 {
		tg.EphemeralDisk.SizeMB = DefaultEphemeralDiskSizeMB
	}

	if d := tg.Disconnect; d != nil {
		if d.Reconcile == "" {
			d.Reconcile = ReconcileOptionBestScore
		}
		if d.LostAfter == 0 {
			d.LostAfter = tg.MaxClientDisconnect
		}
		if d.StopOnClientAfter == 0 {
			d.StopOnClientAfter = tg.StopAfterClientDisconnect
		}
	}
	if s := tg.Scaling; s != nil && s.Type == "" {
		s.Type = ScalingPolicyTypeHorizontal
	}
	for _, v := range tg.Volumes {
		if v != nil && v.Type == "" {
			v.Type = VolumeTypeHost
		}
	}
	canonicalizeNetworks(tg.Networks)
	for _, s := range tg.Services {
		if s != nil {
			s.canonicalize(j, tg, nil)
		}
	}
	for _, t := range tg.Tasks {
		if t != nil {
			t.canonicalize(j, tg)
		}
	}
}

func (t *Task) canonicalize(j *Job, tg *TaskGroup) {
	if len(t.Meta) == 0 {
		t.Meta = nil
	}
	if len(t.Env) == 0 {
		t.Env = nil
	}
	if len(t.Config) == 0 {
		t.Config = nil
	}
	canonicalizeConstraints(t.Constraints)
	canonicalizeAffinities(t.Affinities)

	if t.Resources == nil {
		t.Resources = DefaultResources()
	}
	t.Resources.canonicalize()
	if t.KillTimeout == 0 {
		t.KillTimeout = DefaultKillTimeout
	}
	if t.LogConfig == nil {
		t.LogConfig = DefaultLogConfig()
	}
	if t.LogConfig.MaxFiles == 0 {
		t.LogConfig.MaxFiles = DefaultLogMaxFiles
	}
	if t.LogConfig.MaxFileSizeMB == 0 {
		t.LogConfig.MaxFileSizeMB = DefaultLogMaxFileSizeMB
	}
	if t.RestartPolicy == nil {
		t.RestartPolicy = tg.RestartPolicy.Copy()
	} else if t.RestartPolicy.Mode == "" {
		t.RestartPolicy.Mode = tg.RestartPolicy.Mode
	}
	for _, a := range t.Artifacts {
		if a != nil {
			a.canonicalize()
		}
	}
	for _, tmpl := range t.Templates {
		if tmpl != nil {
			tmpl.canonicalize()
		}
	}
	for _, vm := range t.VolumeMounts {
		if vm != nil && vm.PropagationMode == "" {
			vm.PropagationMode = VolumeMountPropagationPrivate
		}
	}
	if v := t.Vault; v != nil {
		if v.ChangeMode == "" {
			v.ChangeMode = TemplateChangeModeRestart
		}
		if v.Cluster == "" {
			v.Cluster = "default"
		}
	}
	if t.CSIPluginConfig != nil && t.CSIPluginConfig.MountDir == "" {
		t.CSIPluginConfig.MountDir = "/csi"
	}
	for _, s := range t.Services {
		if s != nil {
			s.canonicalize(j, tg, t)
		}
	}
}

func (r *Resources) canonicalize() {
	if r.CPU == 0 && r.Cores == 0 {
		r.CPU = DefaultResourcesCPU
	}
	if r.MemoryMB == 0 {
		r.MemoryMB = DefaultResourcesMemoryMB
	}
	canonicalizeNetworks(r.Networks)
	for _, d := range r.Devices {
		if d == nil {
			continue
		}
		if d.Count == 0 {
			d.Count = 1
		}
		canonicalizeConstraints(d.Constraints)
		canonicalizeAffinities(d.Affinities)
	}
}

func (u *UpdateStrategy) canonicalize() {
	if u == nil {
		return
	}
	d := DefaultUpdateStrategy()
	if u.HealthCheck == "" {
		u.HealthCheck = d.HealthCheck
	}
	if u.Stagger == 0 {
		u.Stagger = d.Stagger
	}
	if u.HealthyDeadline == 0 {
		u.HealthyDeadline = d.HealthyDeadline
	}
}

func (m *MigrateStrategy) canonicalize() {
	if m == nil {
		return
	}
	d := DefaultMigrateStrategy()
	if m.HealthCheck == "" {
		m.HealthCheck = d.HealthCheck
	}
	if m.HealthyDeadline == 0 {
		m.HealthyDeadline = d.HealthyDeadline
	}
}

// canonicalize fills the settings of a given reschedule block that are not
// valid at their zero value from the job type's defaults.
func (r *ReschedulePolicy) canonicalize(jobType string) {
	if r == nil {
		return
	}
	d := DefaultReschedulePolicy(jobType)
	if d == nil {
		return
	}
	if r.DelayFunction == "" {
		r.DelayFunction = d.DelayFunction
	}
	if r.Delay == 0 {
		r.Delay = d.Delay
	}
	if r.MaxDelay == 0 && r.DelayFunction != DelayFunctionConstant {
		r.MaxDelay = max(d.MaxDelay, DefaultReschedulePolicy(JobTypeService).MaxDelay)
	}
	if r.Interval == 0 && r.Attempts > 0 && !r.Unlimited {
		r.Interval = max(d.Interval, DefaultReschedulePolicy(JobTypeBatch).Interval)
	}
}

func (a *TaskArtifact) canonicalize() {
	if a.GetterMode == "" {
		a.GetterMode = GetterModeAny
	}
	if len(a.GetterOptions) == 0 {
		a.GetterOptions = nil
	}
	if len(a.GetterHeaders) == 0 {
		a.GetterHeaders = nil
	}
	if a.RelativeDest == "" {
		if a.GetterMode == GetterModeFile {
			a.RelativeDest = path.Join("local", path.Base(a.GetterSource))
		} else {
			a.RelativeDest = "local/"
		}
	}
}

func (t *Template) canonicalize() {
	if t.ChangeMode == "" {
		t.ChangeMode = TemplateChangeModeRestart
	}
	if t.ChangeSignal == "" && t.ChangeMode == TemplateChangeModeSignal {
		t.ChangeSignal = "SIGHUP"
	}
	t.ChangeSignal = strings.ToUpper(t.ChangeSignal)
	if t.Perms == "" {
		t.Perms = DefaultTemplatePerms
	}
	if t.LeftDelim == "" {
		t.LeftDelim = "{{"
	}
	if t.RightDelim == "" {
		t.RightDelim = "}}"
	}
}

// canonicalize fills a service's defaults. t is nil for group services.
func (s *Service) canonicalize(j *Job, tg *TaskGroup, t *Task) {
	if s.Name == "" {
		if t != nil {
			s.Name = fmt.Sprintf("%s-%s-%s", j.Name, tg.Name, t.Name)
		} else {
			s.Name = fmt.Sprintf("%s-%s", j.Name, tg.Name)
		}
	}
	if s.AddressMode == "" {
		s.AddressMode = AddressModeAuto
	}
	if s.OnUpdate == "" {
		s.OnUpdate = OnUpdateRequireHealthy
	}
	if s.Provider == "" {
		s.Provider = ServiceProviderConsul
	}
	if s.Cluster == "" {
		s.Cluster = "default"
	}
	if len(s.Meta) == 0 {
		s.Meta = nil
	}
	if len(s.CanaryMeta) == 0 {
		s.CanaryMeta = nil
	}
	if len(s.TaggedAddresses) == 0 {
		s.TaggedAddresses = nil
	}
	if w := s.Weights; w != nil {
		if w.Passing <= 0 {
			w.Passing = 1
		}
		if w.Warning <= 0 {
			w.Warning = 1
		}
	}
	for _, c := range s.Checks {
		if c == nil {
			continue
		}
		if c.Name == "" {
			c.Name = fmt.Sprintf("service: %q check", s.Name)
		}
		if c.CheckRestart == nil {
			c.CheckRestart = copyPtr(s.CheckRestart)
		}
		if c.OnUpdate == "" {
			c.OnUpdate = s.OnUpdate
		}
		c.SuccessBeforePassing = max(c.SuccessBeforePassing, 0)
		c.FailuresBeforeCritical = max(c.FailuresBeforeCritical, 0)
		c.FailuresBeforeWarning = max(c.FailuresBeforeWarning, 0)
	}
}

func canonicalizeNetworks(nets []*NetworkResource) {
	for _, n := range nets {
		if n == nil {
			continue
		}
		if n.Mode == "" {
			n.Mode = NetworkModeHost
		}
		for i := range n.ReservedPorts {
			if n.ReservedPorts[i].HostNetwork == "" {
				n.ReservedPorts[i].HostNetwork = "default"
			}
		}
		for i := range n.DynamicPorts {
			if n.DynamicPorts[i].HostNetwork == "" {
				n.DynamicPorts[i].HostNetwork = "default"
			}
		}
	}
}

func canonicalizeConstraints(cs []*Constraint) {
	for _, c := range cs {
		if c != nil && c.Operand == "" {
			c.Operand = ConstraintEqual
		}
	}
}

func canonicalizeAffinities(as []*Affinity) {
	for _, a := range as {
		if a == nil {
			continue
		}
		if a.Operand == "" {
			a.Operand = ConstraintEqual
		}
		if a.Weight == 0 {
			a.Weight = DefaultAffinityWeight
		}
	}
}

func canonicalizeSpreads(ss []*Spread) {
	for _, s := range ss {
		if s != nil && s.Weight == 0 {
			s.Weight = DefaultSpreadWeight
		}
	}
}
