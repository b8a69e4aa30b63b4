package structs

import (
	"slices"
	"testing"
)

func diffTestJob() *Job {
	return &Job{ID: "web", Name: "web", Namespace: "default", Type: JobTypeService, Priority: 50, Datacenters: []string{"dc1"},
		Meta: map[string]string{"owner": "a"},
		TaskGroups: []*TaskGroup{{Name: "g", Count: 2, Tasks: []*Task{{
			Name: "t", Driver: "docker", Config: map[string]any{"image": "redis:7", "args": []any{"--port", "6379"}},
			Env: map[string]string{"A": "1"}, Resources: &Resources{CPU: 100, MemoryMB: 64},
		}}}}}
}

func findField(fs []*FieldDiff, name string) *FieldDiff {
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func findObject(os []*ObjectDiff, name string) *ObjectDiff {
	for _, o := range os {
		if o.Name == name {
			return o
		}
	}
	return nil
}

func TestDiffJobsUnchanged(t *testing.T) {
	d := DiffJobs(diffTestJob(), diffTestJob())
	if d.Type != DiffTypeNone || len(d.Fields) != 0 || len(d.Objects) != 0 {
		t.Fatalf("diff of equal jobs: %+v", d)
	}
	if len(d.TaskGroups) != 1 || d.TaskGroups[0].Type != DiffTypeNone || d.TaskGroups[0].Tasks[0].Type != DiffTypeNone {
		t.Fatalf("groups: %+v", d.TaskGroups[0])
	}
}

func TestDiffJobsNewJob(t *testing.T) {
	d := DiffJobs(nil, diffTestJob())
	if d.Type != DiffTypeAdded || d.TaskGroups[0].Type != DiffTypeAdded {
		t.Fatalf("new job: %s / %s", d.Type, d.TaskGroups[0].Type)
	}
	if f := findField(d.Fields, "Priority"); f == nil || f.Type != DiffTypeAdded || f.New != "50" {
		t.Fatalf("Priority %+v", f)
	}
	task := d.TaskGroups[0].Tasks[0]
	if task.Type != DiffTypeAdded || !slices.Equal(task.Annotations, []string{AnnotationForcesCreate}) {
		t.Fatalf("task %+v", task)
	}
}

func TestDiffJobsEditedImageIsDestructive(t *testing.T) {
	old, cur := diffTestJob(), diffTestJob()
	cur.TaskGroups[0].Tasks[0].Config = map[string]any{"image": "redis:8", "args": []any{"--port", "6379"}}
	d := DiffJobs(old, cur)
	if d.Type != DiffTypeEdited || d.TaskGroups[0].Type != DiffTypeEdited {
		t.Fatalf("types %s / %s", d.Type, d.TaskGroups[0].Type)
	}
	task := d.TaskGroups[0].Tasks[0]
	if task.Type != DiffTypeEdited || !slices.Equal(task.Annotations, []string{AnnotationForcesDestructive}) {
		t.Fatalf("task %+v", task)
	}
	cfg := findObject(task.Objects, "Config")
	if cfg == nil || len(cfg.Fields) != 1 {
		t.Fatalf("config diff %+v", cfg)
	}
	if f := cfg.Fields[0]; f.Name != "image" || f.Type != DiffTypeEdited || f.Old != "redis:7" || f.New != "redis:8" {
		t.Fatalf("image field %+v", f)
	}
	// flattened lists: args[1]
	cur.TaskGroups[0].Tasks[0].Config["args"] = []any{"--port", "7000"}
	cfg = findObject(DiffJobs(old, cur).TaskGroups[0].Tasks[0].Objects, "Config")
	if f := findField(cfg.Fields, "args[1]"); f == nil || f.Old != "6379" || f.New != "7000" {
		t.Fatalf("args[1] %+v", cfg.Fields)
	}
}

func TestDiffJobsCountAnnotations(t *testing.T) {
	old, cur := diffTestJob(), diffTestJob()
	cur.TaskGroups[0].Count = 5
	g := DiffJobs(old, cur).TaskGroups[0]
	f := findField(g.Fields, "Count")
	if g.Type != DiffTypeEdited || f == nil || f.Old != "2" || f.New != "5" || !slices.Equal(f.Annotations, []string{AnnotationForcesCreate}) {
		t.Fatalf("count up: %+v", f)
	}
	if g.Tasks[0].Type != DiffTypeNone || len(g.Tasks[0].Annotations) != 0 {
		t.Fatalf("task of a count change: %+v", g.Tasks[0])
	}
	cur.TaskGroups[0].Count = 1
	f = findField(DiffJobs(old, cur).TaskGroups[0].Fields, "Count")
	if f == nil || !slices.Equal(f.Annotations, []string{AnnotationForcesDestroy}) {
		t.Fatalf("count down: %+v", f)
	}
}

func TestDiffJobsMetaAndTaskMetaInPlace(t *testing.T) {
	old, cur := diffTestJob(), diffTestJob()
	cur.Meta = map[string]string{"owner": "b", "team": "x"}
	cur.TaskGroups[0].Tasks[0].Meta = map[string]string{"k": "v"}
	d := DiffJobs(old, cur)
	if f := findField(d.Fields, "Meta[owner]"); f == nil || f.Type != DiffTypeEdited || f.Old != "a" || f.New != "b" {
		t.Fatalf("Meta[owner] %+v", d.Fields)
	}
	if f := findField(d.Fields, "Meta[team]"); f == nil || f.Type != DiffTypeAdded || f.New != "x" {
		t.Fatalf("Meta[team] %+v", d.Fields)
	}
	task := d.TaskGroups[0].Tasks[0]
	if !slices.Equal(task.Annotations, []string{AnnotationForcesInplaceUpdate}) {
		t.Fatalf("task meta change: %+v", task)
	}
	if f := findField(task.Fields, "Meta[k]"); f == nil || f.Type != DiffTypeAdded {
		t.Fatalf("task Meta[k] %+v", task.Fields)
	}
}

func TestDiffJobsTasksAndGroupsAddedDeleted(t *testing.T) {
	old, cur := diffTestJob(), diffTestJob()
	cur.TaskGroups[0].Tasks = append(cur.TaskGroups[0].Tasks, &Task{Name: "sidecar", Driver: "exec", Config: map[string]any{"command": "sleep"}})
	cur.TaskGroups = append(cur.TaskGroups, &TaskGroup{Name: "h", Count: 1})
	cur.Datacenters = []string{"dc2"}
	d := DiffJobs(old, cur)
	g := d.TaskGroups[0]
	var side *TaskDiff
	for _, tk := range g.Tasks {
		if tk.Name == "sidecar" {
			side = tk
		}
	}
	if side == nil || side.Type != DiffTypeAdded || !slices.Equal(side.Annotations, []string{AnnotationForcesCreate}) {
		t.Fatalf("added task %+v", side)
	}
	if cfg := findObject(side.Objects, "Config"); cfg == nil || cfg.Type != DiffTypeAdded {
		t.Fatalf("added task config %+v", side.Objects)
	}
	if len(d.TaskGroups) != 2 || d.TaskGroups[1].Name != "h" || d.TaskGroups[1].Type != DiffTypeAdded {
		t.Fatalf("groups %+v", d.TaskGroups)
	}
	var added, deleted bool
	for _, f := range d.Fields {
		if f.Name == "Datacenters" {
			added = added || (f.Type == DiffTypeAdded && f.New == "dc2")
			deleted = deleted || (f.Type == DiffTypeDeleted && f.Old == "dc1")
		}
	}
	if !added || !deleted {
		t.Fatalf("datacenters %+v", d.Fields)
	}
	// and back: the group and the task are deleted
	d = DiffJobs(cur, old)
	if d.TaskGroups[1].Type != DiffTypeDeleted {
		t.Fatalf("deleted group %+v", d.TaskGroups[1])
	}
	for _, tk := range d.TaskGroups[0].Tasks {
		if tk.Name == "sidecar" && (tk.Type != DiffTypeDeleted || !slices.Equal(tk.Annotations, []string{AnnotationForcesDestroy})) {
			t.Fatalf("deleted task %+v", tk)
		}
	}
}

func TestDiffJobsNestedBlocks(t *testing.T) {
	old, cur := diffTestJob(), diffTestJob()
	cur.TaskGroups[0].Tasks[0].Resources = &Resources{CPU: 200, MemoryMB: 64}
	cur.TaskGroups[0].Constraints = []*Constraint{{LTarget: "${attr.kernel.name}", RTarget: "linux", Operand: "="}}
	g := DiffJobs(old, cur).TaskGroups[0]
	res := findObject(g.Tasks[0].Objects, "Resources")
	if res == nil || res.Type != DiffTypeEdited {
		t.Fatalf("resources %+v", g.Tasks[0].Objects)
	}
	if f := findField(res.Fields, "CPU"); f == nil || f.Old != "100" || f.New != "200" {
		t.Fatalf("CPU %+v", res.Fields)
	}
	if !slices.Equal(g.Tasks[0].Annotations, []string{AnnotationForcesDestructive}) {
		t.Fatalf("resources change annotation %v", g.Tasks[0].Annotations)
	}
	c := findObject(g.Objects, "Constraint")
	if c == nil || c.Type != DiffTypeAdded || findField(c.Fields, "RTarget") == nil {
		t.Fatalf("constraint %+v", g.Objects)
	}
}
