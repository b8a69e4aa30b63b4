package structs_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/structs"
)

func minimalJob(typ string) *structs.Job {
	return &structs.Job{
		ID:   "example",
		Type: typ,
		TaskGroups: []*structs.TaskGroup{{
			Name:  "g",
			Count: 1,
			Tasks: []*structs.Task{{Name: "t", Driver: "containerd"}},
		}},
	}
}

func TestCanonicalize_Service(t *testing.T) {
	j := minimalJob("")
	j.TaskGroups[0].Services = []*structs.Service{{PortLabel: "http", Checks: []*structs.ServiceCheck{{Type: "tcp", Interval: time.Second, Timeout: time.Second}}}}
	j.TaskGroups[0].Networks = []*structs.NetworkResource{{DynamicPorts: []structs.Port{{Label: "http"}}}}
	j.Canonicalize()

	update := &structs.UpdateStrategy{
		Stagger: 30 * time.Second, MaxParallel: 1, HealthCheck: "checks",
		MinHealthyTime: 10 * time.Second, HealthyDeadline: 5 * time.Minute, ProgressDeadline: 10 * time.Minute,
	}
	restart := &structs.RestartPolicy{Attempts: 2, Interval: 30 * time.Minute, Delay: 15 * time.Second, Mode: "fail"}
	want := &structs.Job{
		ID: "example", Name: "example", Namespace: "default", Region: "global", Type: "service",
		Priority: 50, Datacenters: []string{"*"}, NodePool: "default",
		Update: update,
		TaskGroups: []*structs.TaskGroup{{
			Name: "g", Count: 1,
			Update:           update,
			RestartPolicy:    restart,
			ReschedulePolicy: &structs.ReschedulePolicy{Delay: 30 * time.Second, DelayFunction: "exponential", MaxDelay: time.Hour, Unlimited: true},
			Migrate:          &structs.MigrateStrategy{MaxParallel: 1, HealthCheck: "checks", MinHealthyTime: 10 * time.Second, HealthyDeadline: 5 * time.Minute},
			EphemeralDisk:    &structs.EphemeralDisk{SizeMB: 300},
			Networks:         []*structs.NetworkResource{{Mode: "host", DynamicPorts: []structs.Port{{Label: "http", HostNetwork: "default"}}}},
			Services: []*structs.Service{{
				Name: "example-g", PortLabel: "http", AddressMode: "auto", OnUpdate: "require_healthy",
				Provider: "consul", Cluster: "default",
				Checks: []*structs.ServiceCheck{{Name: `service: "example-g" check`, Type: "tcp", Interval: time.Second, Timeout: time.Second, OnUpdate: "require_healthy"}},
			}},
			Tasks: []*structs.Task{{
				Name: "t", Driver: "containerd",
				Resources:     &structs.Resources{CPU: 100, MemoryMB: 300},
				RestartPolicy: restart,
				KillTimeout:   5 * time.Second,
				LogConfig:     &structs.LogConfig{MaxFiles: 10, MaxFileSizeMB: 10},
			}},
		}},
	}
	if diff := cmp.Diff(want, j); diff != "" {
		t.Errorf("canonical service job (-want +got):\n%s", diff)
	}
	if err := j.Validate(); err != nil {
		t.Errorf("canonical job does not validate: %v", err)
	}
}

func TestCanonicalize_Batch(t *testing.T) {
	j := minimalJob("batch")
	j.Canonicalize()
	tg := j.TaskGroups[0]
	if j.Update != nil || tg.Update != nil || tg.Migrate != nil {
		t.Errorf("batch job got update %+v / %+v or migrate %+v", j.Update, tg.Update, tg.Migrate)
	}
	if diff := cmp.Diff(&structs.RestartPolicy{Attempts: 3, Interval: 24 * time.Hour, Delay: 15 * time.Second, Mode: "fail"}, tg.RestartPolicy); diff != "" {
		t.Errorf("batch restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&structs.ReschedulePolicy{Attempts: 1, Interval: 24 * time.Hour, Delay: 5 * time.Second, DelayFunction: "constant"}, tg.ReschedulePolicy); diff != "" {
		t.Errorf("batch reschedule (-want +got):\n%s", diff)
	}
	if err := j.Validate(); err != nil {
		t.Errorf("canonical batch job does not validate: %v", err)
	}
}

func TestCanonicalize_SystemHasNoReschedule(t *testing.T) {
	for _, typ := range []string{"system", "sysbatch"} {
		j := minimalJob(typ)
		j.Canonicalize()
		if rp := j.TaskGroups[0].ReschedulePolicy; rp != nil {
			t.Errorf("%s: reschedule policy %+v", typ, rp)
		}
		if err := j.Validate(); err != nil {
			t.Errorf("%s: canonical job does not validate: %v", typ, err)
		}
	}
}

func TestCanonicalize_Inheritance(t *testing.T) {
	j := minimalJob("service")
	j.Update = &structs.UpdateStrategy{MaxParallel: 3, Canary: 1}
	j.Migrate = &structs.MigrateStrategy{MaxParallel: 2}
	j.Reschedule = &structs.ReschedulePolicy{Attempts: 5, Interval: time.Hour, DelayFunction: "constant"}
	j.TaskGroups[0].RestartPolicy = &structs.RestartPolicy{Attempts: 1, Interval: time.Minute, Mode: "delay"}
	j.Canonicalize()
	tg := j.TaskGroups[0]
	if tg.Update.MaxParallel != 3 || tg.Update.Canary != 1 || tg.Update.HealthCheck != "checks" || tg.Update.Stagger != 30*time.Second {
		t.Errorf("group update = %+v", tg.Update)
	}
	if tg.Migrate.MaxParallel != 2 || tg.Migrate.HealthCheck != "checks" {
		t.Errorf("group migrate = %+v", tg.Migrate)
	}
	if rp := tg.ReschedulePolicy; rp.Attempts != 5 || rp.Delay != 30*time.Second || rp.Unlimited {
		t.Errorf("group reschedule = %+v", rp)
	}
	if tr := tg.Tasks[0].RestartPolicy; tr.Mode != "delay" || tr.Attempts != 1 || tr == tg.RestartPolicy {
		t.Errorf("task restart = %+v (must be a copy of the group's)", tr)
	}
	if tg.Update == j.Update {
		t.Errorf("group update shares the job's pointer")
	}
}

func TestCanonicalize_Idempotent(t *testing.T) {
	for _, typ := range []string{"service", "batch", "system", "sysbatch"} {
		j := minimalJob(typ)
		j.Affinities = []*structs.Affinity{{LTarget: "${node.class}", RTarget: "x"}}
		j.Constraints = []*structs.Constraint{{LTarget: "${attr.os}", RTarget: "linux"}}
		j.Periodic = &structs.PeriodicConfig{Enabled: true, Spec: "@hourly"}
		task := j.TaskGroups[0].Tasks[0]
		task.Templates = []*structs.Template{{DestPath: "local/x", ChangeMode: "signal", ChangeSignal: "sigusr1"}}
		task.Artifacts = []*structs.TaskArtifact{{GetterSource: "https://x/y.tgz", GetterMode: "file"}}
		task.Services = []*structs.Service{{Checks: []*structs.ServiceCheck{{Type: "http"}}}}
		task.Resources = &structs.Resources{Cores: 2}
		j.Canonicalize()
		once := j.Copy()
		j.Canonicalize()
		if diff := cmp.Diff(once, j); diff != "" {
			t.Errorf("%s: second Canonicalize changed the job (-once +twice):\n%s", typ, diff)
		}
		if task.Templates[0].ChangeSignal != "SIGUSR1" || task.Templates[0].Perms != "0644" {
			t.Errorf("%s: template = %+v", typ, task.Templates[0])
		}
		if task.Artifacts[0].RelativeDest != "local/y.tgz" {
			t.Errorf("%s: artifact destination = %q", typ, task.Artifacts[0].RelativeDest)
		}
		if task.Resources.CPU != 0 || task.Resources.MemoryMB != 300 {
			t.Errorf("%s: cores-only resources = %+v, want cpu 0", typ, task.Resources)
		}
		if task.Services[0].Name != "example-g-t" {
			t.Errorf("%s: task service name = %q", typ, task.Services[0].Name)
		}
		if j.Affinities[0].Weight != 50 || j.Constraints[0].Operand != "=" {
			t.Errorf("%s: affinity %+v constraint %+v", typ, j.Affinities[0], j.Constraints[0])
		}
	}
}
