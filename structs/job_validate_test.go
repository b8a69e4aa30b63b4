package structs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

func validJob(typ string) *structs.Job {
	j := minimalJob(typ)
	j.Canonicalize()
	return j
}

// messages splits a joined validation error into its lines.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func requireProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	got := messages(err)
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.Contains(g, w) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no problem mentioning %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func TestValidate_ReportsEverythingAtOnce(t *testing.T) {
	j := validJob("service")
	j.ID = ""
	j.Type = "cron"
	j.Priority = 101
	j.Constraints = []*structs.Constraint{{LTarget: "${attr.os}", Operand: "~=", RTarget: "x"}}
	tg := j.TaskGroups[0]
	tg.Count = -1
	tg.RestartPolicy.Mode = "sometimes"
	tg.ShutdownDelay = -time.Second
	tg.Networks = []*structs.NetworkResource{{
		Mode:          "bridge",
		ReservedPorts: []structs.Port{{Label: "http", Value: 70000}},
		DynamicPorts:  []structs.Port{{Label: "http"}},
	}}
	tg.Services = []*structs.Service{{Name: "bad_name!", PortLabel: "nope", Provider: "consul", AddressMode: "auto", OnUpdate: "require_healthy"}}
	tg.Tasks = append(tg.Tasks, &structs.Task{Name: "t", Resources: &structs.Resources{CPU: 0, MemoryMB: 5}})

	err := j.Validate()
	requireProblems(t, err,
		"missing job ID",
		`invalid job type "cron"`,
		"job priority must be within 1..100, got 101",
		`constraint "${attr.os} ~= x": unknown constraint operator "~="`,
		`group "g": count must not be negative`,
		`group "g": restart: unsupported restart mode "sometimes"`,
		`group "g": shutdown_delay must not be negative`,
		`group "g": network: port "http": static port 70000 out of range`,
		`group "g": network: port "http": port label given more than once`,
		`group "g": service "bad_name!": service name "bad_name!" must be valid`,
		`group "g": service "bad_name!": port label "nope" is not defined`,
		`group "g": task "t": task name given more than once`,
		`group "g": task "t": missing driver`,
		`group "g": task "t": resources: minimum cpu value is 1`,
		`group "g": task "t": resources: minimum memory value is 10 MB`,
	)
	if n := len(messages(err)); n < 15 {
		t.Errorf("got %d problems, want at least 15", n)
	}
	// The error is an errors.Join: each problem is reachable on its own.
	if u, ok := err.(interface{ Unwrap() []error }); !ok || len(u.Unwrap()) != len(messages(err)) {
		t.Errorf("validation error is not a flat errors.Join")
	}
}

func TestValidate_Valid(t *testing.T) {
	for _, typ := range []string{"service", "batch", "system", "sysbatch"} {
		if err := validJob(typ).Validate(); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func TestValidate_JobTypeRules(t *testing.T) {
	sys := validJob("system")
	sys.TaskGroups[0].Count = 3
	sys.TaskGroups[0].ReschedulePolicy = structs.DefaultReschedulePolicy("service")
	sys.TaskGroups[0].Migrate = structs.DefaultMigrateStrategy()
	sys.Affinities = []*structs.Affinity{{LTarget: "a", Operand: "=", RTarget: "b", Weight: 50}}
	requireProblems(t, sys.Validate(),
		`group "g": count 3: a system job runs one allocation per node`,
		`group "g": system jobs cannot have a reschedule policy`,
		`group "g": system jobs do not allow a migrate block`,
		"system jobs cannot have affinities",
	)

	batch := validJob("batch")
	batch.TaskGroups[0].Update = structs.DefaultUpdateStrategy()
	batch.TaskGroups[0].Tasks[0].DispatchPayload = &structs.DispatchPayloadConfig{File: "../../etc/passwd"}
	requireProblems(t, batch.Validate(),
		`group "g": batch jobs do not allow an update block`,
		`task "t": dispatch_payload is only allowed in parameterized jobs`,
		`task "t": dispatch_payload file "../../etc/passwd" escapes`,
	)

	svc := validJob("service")
	svc.Periodic = &structs.PeriodicConfig{Enabled: true, SpecType: "cron", TimeZone: "Mars/Olympus"}
	svc.ParameterizedJob = &structs.ParameterizedJobConfig{Payload: "maybe"}
	requireProblems(t, svc.Validate(),
		`periodic: periodic can only be used with "batch" or "sysbatch" jobs`,
		"periodic: missing cron spec",
		`periodic: invalid time zone "Mars/Olympus"`,
		`parameterized: parameterized can only be used`,
		`parameterized: invalid payload "maybe"`,
	)
}

func TestValidate_PoliciesAndTasks(t *testing.T) {
	j := validJob("service")
	tg := j.TaskGroups[0]
	tg.Update.HealthyDeadline = time.Second
	tg.Update.MinHealthyTime = 2 * time.Second
	tg.ReschedulePolicy.DelayFunction = "linear"
	tg.Name = "web"
	j.TaskGroups = append(j.TaskGroups, validJob("service").TaskGroups[0])
	j.TaskGroups[1].Name = "web"
	task := tg.Tasks[0]
	task.Name = "api"
	task.KillTimeout = -time.Second
	task.Constraints = []*structs.Constraint{{Operand: structs.ConstraintDistinctHosts, RTarget: "true"}}
	task.LogConfig.MaxFiles = 100
	task.Lifecycle = &structs.TaskLifecycleConfig{Hook: "prestop"}
	task.Templates = []*structs.Template{{ChangeMode: "signal", Perms: "999", Envvars: true}}
	task.VolumeMounts = []*structs.VolumeMount{{Volume: "data", Destination: "/data"}}
	task.Resources.Cores = 2

	requireProblems(t, j.Validate(),
		`group "web": update: update min_healthy_time (2s) must be less than healthy_deadline (1s)`,
		`group "web": reschedule: invalid reschedule delay_function "linear"`,
		`group "web": group name given more than once`,
		`group "web": task "api": kill_timeout must not be negative`,
		`group "web": task "api": constraint " distinct_hosts true": operator "distinct_hosts" is not allowed at task level`,
		`group "web": task "api": log storage (1000 MB) must be less than the ephemeral disk (300 MB)`,
		`group "web": task "api": invalid lifecycle hook "prestop"`,
		`group "web": task "api": template 0: must have a source or data`,
		`group "web": task "api": template 0: missing destination`,
		`group "web": task "api": template 0: change_mode "signal" requires a change_signal`,
		`group "web": task "api": template 0: change_mode "signal" cannot be used with env = true: the environment changes only on a restart`,
		`group "web": task "api": template 0: perms "999" is not an octal file mode`,
		`group "web": task "api": volume_mount 0: volume "data" is not defined by the group`,
		`group "web": task "api": resources: ask for cpu or cores, not both`,
	)
}

func TestValidate_TemplateWait(t *testing.T) {
	d := func(v time.Duration) *time.Duration { return &v }
	withWait := func(w *structs.WaitConfig) *structs.Job {
		j := validJob("service")
		j.TaskGroups[0].Tasks[0].Templates = []*structs.Template{{EmbeddedTmpl: "x", DestPath: "local/x", Wait: w}}
		return j
	}
	for name, w := range map[string]*structs.WaitConfig{
		"no bounds":   {},
		"min only":    {Min: d(time.Second)},
		"max only":    {Max: d(time.Second)},
		"min < max":   {Min: d(time.Second), Max: d(time.Minute)},
		"min == max":  {Min: d(time.Second), Max: d(time.Second)},
		"zero bounds": {Min: d(0), Max: d(0)},
	} {
		if err := withWait(w).Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	requireProblems(t, withWait(&structs.WaitConfig{Min: d(2 * time.Second), Max: d(time.Second)}).Validate(),
		"template 0: wait min (2s) must not be greater than max (1s)")
	err := withWait(&structs.WaitConfig{Min: d(-time.Second), Max: d(-2 * time.Second)}).Validate()
	requireProblems(t, err, "template 0: wait min must not be negative, got -1s", "template 0: wait max must not be negative, got -2s")
	if msgs := messages(err); len(msgs) != 3 {
		t.Errorf("negative bounds: %q, want the two negatives and min > max", msgs)
	}
}

func TestConstraintValidate(t *testing.T) {
	ok := []structs.Constraint{
		{LTarget: "${attr.kernel.name}", Operand: "=", RTarget: "linux"},
		{LTarget: "${attr.nomad.version}", Operand: "version", RTarget: ">= 1.5"},
		{LTarget: "${meta.tags}", Operand: "set_contains_any", RTarget: "a,b"},
		{LTarget: "${attr.x}", Operand: "is_set"},
		{Operand: "distinct_hosts", RTarget: "true"},
		{LTarget: "${meta.rack}", Operand: "distinct_property", RTarget: "2"},
		{LTarget: "${node.class}", Operand: "regexp", RTarget: "^web-[0-9]+$"},
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	bad := map[string]structs.Constraint{
		"unknown constraint operator": {LTarget: "a", Operand: "~", RTarget: "b"},
		"requires a value":            {LTarget: "a", Operand: "!="},
		"failed to compile":           {LTarget: "a", Operand: "regexp", RTarget: "("},
		"does not take a value":       {LTarget: "a", Operand: "is_not_set", RTarget: "x"},
		"allow a count of 1 or more":  {LTarget: "a", Operand: "distinct_property", RTarget: "0"},
		"no attribute":                {Operand: "set_contains", RTarget: "x"},
	}
	for want, c := range bad {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want %q", c, err, want)
		}
	}
}
