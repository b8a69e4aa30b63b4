package structs

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// problems collects validation errors, each prefixed with where it is
// (`group "web": task "api": ...`).
type problems struct {
	prefix string
	errs   *[]error
}

func (p problems) addf(format string, args ...any) {
	*p.errs = append(*p.errs, fmt.Errorf("%s"+format, append([]any{p.prefix}, args...)...))
}

// add records err, or each error it joins, under p's prefix.
func (p problems) add(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			p.add(e)
		}
		return
	}
	*p.errs = append(*p.errs, fmt.Errorf("%s%w", p.prefix, err))
}

// in returns a collector for a nested location.
func (p problems) in(format string, args ...any) problems {
	return problems{prefix: p.prefix + fmt.Sprintf(format, args...) + ": ", errs: p.errs}
}

// Validate reports every problem with the job, joined with errors.Join. It
// expects a canonicalized job (see Canonicalize). Cron expressions of
// periodic jobs are not parsed here (structs imports the standard library
// only); the jobspec and job-register paths check them.
func (j *Job) Validate() error {
	var errs []error
	p := problems{errs: &errs}
	j.validate(p)
	return errors.Join(errs...)
}

func (j *Job) validate(p problems) {
	switch {
	case j.ID == "":
		p.addf("missing job ID")
	case strings.Contains(j.ID, " "):
		p.addf("job ID %q contains a space", j.ID)
	case strings.ContainsRune(j.ID, 0):
		p.addf("job ID contains a null character")
	}
	if j.Name == "" {
		p.addf("missing job name")
	} else if strings.ContainsRune(j.Name, 0) {
		p.addf("job name contains a null character")
	}
	if j.Namespace == "" {
		p.addf("missing job namespace")
	}
	if j.Region == "" {
		p.addf("missing job region")
	}
	system := j.Type == JobTypeSystem || j.Type == JobTypeSysBatch
	switch j.Type {
	case JobTypeService, JobTypeBatch, JobTypeSystem, JobTypeSysBatch:
	case "":
		p.addf("missing job type")
	default:
		p.addf("invalid job type %q, must be one of service, batch, system, sysbatch", j.Type)
	}
	if j.Priority < JobMinPriority || j.Priority > JobMaxPriority {
		p.addf("job priority must be within %d..%d, got %d", JobMinPriority, JobMaxPriority, j.Priority)
	}
	if len(j.Datacenters) == 0 {
		p.addf("job must name at least one datacenter")
	}
	for _, dc := range j.Datacenters {
		if dc == "" {
			p.addf("job datacenter must be a non-empty string")
		}
	}
	if len(j.TaskGroups) == 0 {
		p.addf("job has no task groups")
	}
	validateConstraints(j.Constraints, p, false)
	validatePreferences(j.Affinities, j.Spreads, j.Type, p)
	if j.Update != nil {
		p.add(j.Update.Validate())
	}
	if j.Periodic != nil && j.Periodic.Enabled {
		pp := p.in("periodic")
		if j.Type != JobTypeBatch && j.Type != JobTypeSysBatch {
			pp.addf("periodic can only be used with %q or %q jobs", JobTypeBatch, JobTypeSysBatch)
		}
		if len(j.Periodic.AllSpecs()) == 0 {
			pp.addf("missing cron spec")
		}
		if j.Periodic.SpecType != PeriodicSpecCron {
			pp.addf("unknown spec type %q", j.Periodic.SpecType)
		}
		if _, err := time.LoadLocation(j.Periodic.TimeZone); err != nil {
			pp.addf("invalid time zone %q: %w", j.Periodic.TimeZone, err)
		}
	}
	if pj := j.ParameterizedJob; pj != nil {
		pp := p.in("parameterized")
		if j.Type != JobTypeBatch && j.Type != JobTypeSysBatch {
			pp.addf("parameterized can only be used with %q or %q jobs", JobTypeBatch, JobTypeSysBatch)
		}
		switch pj.Payload {
		case DispatchPayloadOptional, DispatchPayloadRequired, DispatchPayloadForbidden, "":
		default:
			pp.addf("invalid payload %q, must be optional, required or forbidden", pj.Payload)
		}
		for _, k := range pj.MetaRequired {
			for _, o := range pj.MetaOptional {
				if k == o {
					pp.addf("meta key %q is both required and optional", k)
				}
			}
		}
	}
	seen := map[string]int{}
	for i, tg := range j.TaskGroups {
		if tg == nil {
			p.addf("group %d is null", i)
			continue
		}
		gp := p.in("group %q", tg.Name)
		if tg.Name == "" {
			gp = p.in("group %d", i)
			gp.addf("missing group name")
		} else if first, dup := seen[tg.Name]; dup {
			gp.addf("group name given more than once (first as group %d)", first)
		} else {
			seen[tg.Name] = i
		}
		tg.validate(j, gp, system)
	}
}

func (tg *TaskGroup) validate(j *Job, p problems, system bool) {
	if tg.Count < 0 {
		p.addf("count must not be negative, got %d", tg.Count)
	}
	if system && tg.Count > 1 {
		p.addf("count %d: a %s job runs one allocation per node, count cannot exceed 1", tg.Count, j.Type)
	}
	if len(tg.Tasks) == 0 {
		p.addf("group has no tasks")
	}
	validateConstraints(tg.Constraints, p, false)
	validatePreferences(tg.Affinities, tg.Spreads, j.Type, p)

	if tg.RestartPolicy == nil {
		p.addf("missing restart policy")
	} else {
		p.in("restart").add(tg.RestartPolicy.Validate())
	}
	if system {
		if tg.ReschedulePolicy != nil {
			p.addf("%s jobs cannot have a reschedule policy", j.Type)
		}
	} else if tg.ReschedulePolicy == nil {
		p.addf("missing reschedule policy")
	} else {
		p.in("reschedule").add(tg.ReschedulePolicy.Validate())
	}
	if tg.Update != nil {
		if j.Type != JobTypeService && j.Type != JobTypeSystem {
			p.addf("%s jobs do not allow an update block", j.Type)
		}
		p.in("update").add(tg.Update.Validate())
	}
	if tg.Migrate != nil {
		if j.Type != JobTypeService {
			p.addf("%s jobs do not allow a migrate block", j.Type)
		}
		p.in("migrate").add(tg.Migrate.Validate())
	}
	if tg.Disconnect != nil {
		p.in("disconnect").add(tg.Disconnect.Validate())
	}
	if tg.EphemeralDisk != nil && tg.EphemeralDisk.SizeMB < 0 {
		p.addf("ephemeral_disk size must not be negative, got %d", tg.EphemeralDisk.SizeMB)
	}
	for name, d := range map[string]time.Duration{
		"shutdown_delay":               tg.ShutdownDelay,
		"max_run_duration":             tg.MaxRunDuration,
		"stop_after_client_disconnect": tg.StopAfterClientDisconnect,
		"max_client_disconnect":        tg.MaxClientDisconnect,
	} {
		if d < 0 {
			p.addf("%s must not be negative, got %v", name, d)
		}
	}
	if s := tg.Scaling; s != nil {
		sp := p.in("scaling")
		if s.Type != "" && s.Type != ScalingPolicyTypeHorizontal {
			sp.addf("group scaling policy must be %q, got %q", ScalingPolicyTypeHorizontal, s.Type)
		}
		if s.Min < 0 {
			sp.addf("min must not be negative, got %d", s.Min)
		}
		if s.Max < s.Min {
			sp.addf("max (%d) must not be less than min (%d)", s.Max, s.Min)
		}
		if s.Enabled && (int64(tg.Count) < s.Min || int64(tg.Count) > s.Max) {
			sp.addf("group count %d must be within min %d and max %d", tg.Count, s.Min, s.Max)
		}
	}
	for name, v := range tg.Volumes {
		vp := p.in("volume %q", name)
		if v == nil {
			vp.addf("volume is null")
			continue
		}
		switch v.Type {
		case VolumeTypeHost, VolumeTypeCSI, "":
		default:
			vp.addf("invalid volume type %q, must be host or csi", v.Type)
		}
		if v.Source == "" {
			vp.addf("missing volume source")
		}
		if v.PerAlloc && v.Type != VolumeTypeCSI {
			vp.addf("per_alloc is only supported for csi volumes")
		}
	}

	// Networks: one per group; port labels unique across group and task
	// networks; static ports unique per host network.
	if len(tg.Networks) > 1 {
		p.addf("only one network block is allowed per group, got %d", len(tg.Networks))
	}
	labels := map[string]bool{}
	static := map[string]map[int]bool{}
	for _, n := range tg.Networks {
		if n != nil {
			validateNetwork(n, p.in("network"), labels, static)
		}
	}
	for _, t := range tg.Tasks {
		if t != nil && t.Resources != nil {
			for _, n := range t.Resources.Networks {
				if n != nil {
					validateNetwork(n, p.in("task %q: network", t.Name), labels, static)
				}
			}
		}
	}
	ports := tg.portLabels()
	services := map[string]bool{}
	checkDupService := func(s *Service, sp problems) {
		key := s.Name + "\x00" + s.PortLabel
		if s.Name != "" && services[key] {
			sp.addf("service given more than once with the same port")
		}
		services[key] = true
	}
	for i, s := range tg.Services {
		if s == nil {
			continue
		}
		sp := serviceProblems(p, s, i)
		checkDupService(s, sp)
		validateService(s, sp, ports)
		if s.TaskName != "" && tg.LookupTask(s.TaskName) == nil {
			sp.addf("task %q is not in the group", s.TaskName)
		}
	}

	tasks := map[string]int{}
	leaders := 0
	for i, t := range tg.Tasks {
		if t == nil {
			p.addf("task %d is null", i)
			continue
		}
		tp := p.in("task %q", t.Name)
		if t.Name == "" {
			tp = p.in("task %d", i)
		} else if first, dup := tasks[t.Name]; dup {
			tp.addf("task name given more than once (first as task %d)", first)
		} else {
			tasks[t.Name] = i
		}
		if t.Leader {
			leaders++
		}
		for k, s := range t.Services {
			if s != nil {
				checkDupService(s, serviceProblems(tp, s, k))
			}
		}
		t.validate(j, tg, tp, ports)
	}
	if leaders > 1 {
		p.addf("only one task may be the leader, got %d", leaders)
	}
}

func serviceProblems(p problems, s *Service, i int) problems {
	if s.Name == "" {
		return p.in("service %d", i)
	}
	return p.in("service %q", s.Name)
}

func (t *Task) validate(j *Job, tg *TaskGroup, p problems, ports map[string]bool) {
	if t.Name == "" {
		p.addf("missing task name")
	} else if strings.ContainsAny(t.Name, "/\x00") {
		p.addf("task name cannot contain slashes or null characters")
	}
	if t.Driver == "" {
		p.addf("missing driver")
	}
	if t.KillTimeout < 0 {
		p.addf("kill_timeout must not be negative, got %v", t.KillTimeout)
	}
	if t.ShutdownDelay < 0 {
		p.addf("shutdown_delay must not be negative, got %v", t.ShutdownDelay)
	}
	for k := range t.Env {
		if k == "" {
			p.addf("env has an empty variable name")
		}
	}
	validateConstraints(t.Constraints, p, true)
	validatePreferences(t.Affinities, nil, j.Type, p)

	if r := t.Resources; r == nil {
		p.addf("missing resources")
	} else {
		validateResources(r, p.in("resources"))
	}
	if l := t.LogConfig; l != nil {
		if l.MaxFiles < 1 {
			p.addf("logs max_files must be at least 1, got %d", l.MaxFiles)
		}
		if l.MaxFileSizeMB < 1 {
			p.addf("logs max_file_size must be at least 1 MB, got %d", l.MaxFileSizeMB)
		}
		if d := tg.EphemeralDisk; d != nil && !l.Disabled && d.SizeMB <= l.MaxFiles*l.MaxFileSizeMB {
			p.addf("log storage (%d MB) must be less than the ephemeral disk (%d MB)", l.MaxFiles*l.MaxFileSizeMB, d.SizeMB)
		}
	}
	if t.RestartPolicy != nil {
		p.in("restart").add(t.RestartPolicy.validate(false))
	}
	if lc := t.Lifecycle; lc != nil {
		switch lc.Hook {
		case TaskLifecycleHookPrestart, TaskLifecycleHookPoststart, TaskLifecycleHookPoststop:
		default:
			p.addf("invalid lifecycle hook %q, must be prestart, poststart or poststop", lc.Hook)
		}
	}
	if t.DispatchPayload != nil {
		if j.ParameterizedJob == nil {
			p.addf("dispatch_payload is only allowed in parameterized jobs")
		}
		if escapes(t.DispatchPayload.File) {
			p.addf("dispatch_payload file %q escapes the allocation directory", t.DispatchPayload.File)
		}
	}
	for i, a := range t.Artifacts {
		if a == nil {
			continue
		}
		ap := p.in("artifact %d", i)
		if a.GetterSource == "" {
			ap.addf("missing artifact source")
		}
		switch a.GetterMode {
		case "", GetterModeAny, GetterModeFile, GetterModeDir:
		default:
			ap.addf("invalid artifact mode %q, must be any, file or dir", a.GetterMode)
		}
		if escapes(a.RelativeDest) {
			ap.addf("artifact destination %q escapes the allocation directory", a.RelativeDest)
		}
	}
	for i, tmpl := range t.Templates {
		if tmpl != nil {
			validateTemplate(tmpl, p.in("template %d", i))
		}
	}
	for i, vm := range t.VolumeMounts {
		if vm == nil {
			continue
		}
		vp := p.in("volume_mount %d", i)
		if vm.Volume == "" {
			vp.addf("missing volume")
		} else if !strings.Contains(vm.Volume, "${") && tg.LookupVolume(vm.Volume) == nil {
			vp.addf("volume %q is not defined by the group", vm.Volume)
		}
		if vm.Destination == "" {
			vp.addf("missing destination")
		}
		switch vm.PropagationMode {
		case "", VolumeMountPropagationPrivate, VolumeMountPropagationHostToTask, VolumeMountPropagationBidirectional:
		default:
			vp.addf("invalid propagation_mode %q", vm.PropagationMode)
		}
	}
	for i, s := range t.Services {
		if s != nil {
			validateService(s, serviceProblems(p, s, i), ports)
		}
	}
}

func validateResources(r *Resources, p problems) {
	if r.Cores < 0 {
		p.addf("cores must not be negative, got %d", r.Cores)
	}
	if r.Cores > 0 && r.CPU > 0 {
		p.addf("ask for cpu or cores, not both")
	}
	if r.Cores == 0 && r.CPU < MinResourcesCPU {
		p.addf("minimum cpu value is %d, got %d", MinResourcesCPU, r.CPU)
	}
	if r.MemoryMB < MinResourcesMemoryMB {
		p.addf("minimum memory value is %d MB, got %d", MinResourcesMemoryMB, r.MemoryMB)
	}
	if r.MemoryMaxMB != 0 && r.MemoryMaxMB < r.MemoryMB {
		p.addf("memory_max (%d MB) must not be less than memory (%d MB)", r.MemoryMaxMB, r.MemoryMB)
	}
	if r.DiskMB < 0 || r.IOPS < 0 || r.SecretsMB < 0 {
		p.addf("disk, iops and secrets must not be negative")
	}
	for i, d := range r.Devices {
		if d == nil {
			continue
		}
		dp := p.in("device %q", d.Name)
		if d.Name == "" {
			dp = p.in("device %d", i)
			dp.addf("missing device name")
		}
		validateConstraints(d.Constraints, dp, false)
		for _, a := range d.Affinities {
			if a != nil {
				dp.in("affinity %q", a.String()).add(a.Validate())
			}
		}
	}
}

func validateTemplate(t *Template, p problems) {
	if t.SourcePath == "" && t.EmbeddedTmpl == "" {
		p.addf("must have a source or data")
	}
	if t.DestPath == "" {
		p.addf("missing destination")
	} else if escapes(t.DestPath) {
		p.addf("destination %q escapes the allocation directory", t.DestPath)
	}
	switch t.ChangeMode {
	case TemplateChangeModeNoop, TemplateChangeModeRestart, "":
	case TemplateChangeModeSignal:
		if t.ChangeSignal == "" {
			p.addf("change_mode %q requires a change_signal", t.ChangeMode)
		}
		// a signal cannot change a running process's environment
		if t.Envvars {
			p.addf("change_mode %q cannot be used with env = true: the environment changes only on a restart", t.ChangeMode)
		}
	case TemplateChangeModeScript:
		if t.ChangeScript == nil || t.ChangeScript.Command == "" {
			p.addf("change_mode %q requires a change_script with a command", t.ChangeMode)
		}
	default:
		p.addf("invalid change_mode %q, must be noop, restart, signal or script", t.ChangeMode)
	}
	if t.Splay < 0 {
		p.addf("splay must not be negative, got %v", t.Splay)
	}
	if w := t.Wait; w != nil {
		if w.Min != nil && *w.Min < 0 {
			p.addf("wait min must not be negative, got %v", *w.Min)
		}
		if w.Max != nil && *w.Max < 0 {
			p.addf("wait max must not be negative, got %v", *w.Max)
		}
		if w.Min != nil && w.Max != nil && *w.Min > *w.Max {
			p.addf("wait min (%v) must not be greater than max (%v)", *w.Min, *w.Max)
		}
	}
	if t.Perms != "" {
		if _, err := strconv.ParseUint(t.Perms, 8, 12); err != nil {
			p.addf("perms %q is not an octal file mode", t.Perms)
		}
	}
}

func validateConstraints(cs []*Constraint, p problems, taskLevel bool) {
	for _, c := range cs {
		if c == nil {
			continue
		}
		cp := p.in("constraint %q", c.String())
		cp.add(c.Validate())
		if taskLevel && (c.Operand == ConstraintDistinctHosts || c.Operand == ConstraintDistinctProperty) {
			cp.addf("operator %q is not allowed at task level", c.Operand)
		}
	}
}

func validatePreferences(as []*Affinity, ss []*Spread, jobType string, p problems) {
	if jobType == JobTypeSystem || jobType == JobTypeSysBatch {
		if len(as) > 0 {
			p.addf("%s jobs cannot have affinities", jobType)
		}
		if len(ss) > 0 {
			p.addf("%s jobs cannot have spreads", jobType)
		}
		return
	}
	for _, a := range as {
		if a != nil {
			p.in("affinity %q", a.String()).add(a.Validate())
		}
	}
	for _, s := range ss {
		if s != nil {
			p.in("spread %q", s.Attribute).add(s.Validate())
		}
	}
}

// escapes reports whether a path given relative to a task's directory
// leaves the allocation directory ("../alloc/data" is fine).
func escapes(p string) bool {
	if p == "" {
		return false
	}
	c := path.Join("task", strings.TrimPrefix(p, "/"))
	return c == ".." || strings.HasPrefix(c, "../")
}
