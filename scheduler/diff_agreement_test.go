package scheduler_test

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/structs"
)

// The job plan diff's task annotations and the scheduler's in-place versus
// destructive decision agree, change by change.
func TestPlanDiffAnnotationsAgreeWithScheduler(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mut         func(*structs.Task)
		destructive bool
	}{
		{"image", func(t *structs.Task) { t.Config["image"] = "nginx:1.29" }, true},
		{"env", func(t *structs.Task) { t.Env = map[string]string{"A": "1"} }, true},
		{"memory", func(t *structs.Task) { t.Resources.MemoryMB += 64 }, true},
		{"task meta", func(t *structs.Task) { t.Meta = map[string]string{"k": "v"} }, false},
		{"kill timeout", func(t *structs.Task) { t.KillTimeout = 42 * time.Second }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := cluster(t, 3)
			j := jobWithCount("web", 2)
			j.TaskGroups[0].Update = &structs.UpdateStrategy{MaxParallel: 0}
			run(t, h, j)
			markRunning(h, j)
			j2, _ := update(t, h, j, func(j *structs.Job) { tc.mut(j.TaskGroups[0].Tasks[0]) })
			d := h.LastPlan().Annotations.DesiredTGUpdates["web"]
			if gotDestructive := d.DestructiveUpdate > 0; gotDestructive != tc.destructive || (d.InPlaceUpdate > 0) == tc.destructive {
				t.Fatalf("scheduler: %+v, want destructive=%v", d, tc.destructive)
			}
			diff := structs.DiffJobs(j, j2)
			want := structs.AnnotationForcesInplaceUpdate
			if tc.destructive {
				want = structs.AnnotationForcesDestructive
			}
			if task := diff.TaskGroups[0].Tasks[0]; !slices.Equal(task.Annotations, []string{want}) {
				t.Fatalf("diff annotations %v, want %q", task.Annotations, want)
			}
		})
	}
}
