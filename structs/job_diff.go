package structs

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Diff types, as Nomad's.
const (
	DiffTypeNone    = "None"
	DiffTypeAdded   = "Added"
	DiffTypeDeleted = "Deleted"
	DiffTypeEdited  = "Edited"
)

// Annotations `job plan` puts on fields and tasks, as Nomad's.
const (
	AnnotationForcesCreate        = "forces create"
	AnnotationForcesDestroy       = "forces destroy"
	AnnotationForcesInplaceUpdate = "forces in-place update"
	AnnotationForcesDestructive   = "forces create/destroy update"
)

// JobDiff is the field-level difference between two versions of a job,
// Nomad's JobDiff wire shape (api.JobDiff).
type JobDiff struct {
	Type       string
	ID         string
	Fields     []*FieldDiff
	Objects    []*ObjectDiff
	TaskGroups []*TaskGroupDiff
}

// TaskGroupDiff is the difference of one task group. Updates is filled by
// the plan endpoint from the scheduler's desired updates.
type TaskGroupDiff struct {
	Type    string
	Name    string
	Fields  []*FieldDiff
	Objects []*ObjectDiff
	Tasks   []*TaskDiff
	Updates map[string]uint64 `json:",omitempty"`
}

// TaskDiff is the difference of one task.
type TaskDiff struct {
	Type        string
	Name        string
	Fields      []*FieldDiff
	Objects     []*ObjectDiff
	Annotations []string
}

// FieldDiff is the change of one primitive field (or map entry).
type FieldDiff struct {
	Type        string
	Name        string
	Old, New    string
	Annotations []string
}

// ObjectDiff is the change of a nested block.
type ObjectDiff struct {
	Type    string
	Name    string
	Fields  []*FieldDiff
	Objects []*ObjectDiff
}

// Fields set by the servers, never by a job file: not part of a diff.
var diffSkipJob = fieldSet("TaskGroups", "Status", "StatusDescription", "Stable", "Version", "VersionTag",
	"SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex", "Payload", "Dispatched")

var (
	diffSkipGroup = fieldSet("Tasks")
	diffSkipTask  = fieldSet("Config")
)

func fieldSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// DiffJobs returns the difference from old (nil: the job is new) to cur,
// with task annotations following the scheduler's rule of what replaces
// allocations (TaskUpdateDestructive) and Count annotated with creates or
// destroys. Unchanged fields are left out.
func DiffJobs(old, cur *Job) *JobDiff {
	if cur == nil {
		return nil
	}
	d := &JobDiff{ID: cur.ID}
	var ov reflect.Value
	if old != nil {
		ov = reflect.ValueOf(old).Elem()
	}
	d.Fields, d.Objects = diffStruct(ov, reflect.ValueOf(cur).Elem(), diffSkipJob)
	var oldGroups []*TaskGroup
	if old != nil {
		oldGroups = old.TaskGroups
	}
	for _, tg := range cur.TaskGroups {
		var prev *TaskGroup
		if old != nil {
			prev = old.LookupTaskGroup(tg.Name)
		}
		d.TaskGroups = append(d.TaskGroups, diffTaskGroup(prev, tg))
	}
	for _, tg := range oldGroups {
		if cur.LookupTaskGroup(tg.Name) == nil {
			d.TaskGroups = append(d.TaskGroups, diffTaskGroup(tg, nil))
		}
	}
	sort.Slice(d.TaskGroups, func(i, j int) bool { return d.TaskGroups[i].Name < d.TaskGroups[j].Name })
	switch {
	case old == nil:
		d.Type = DiffTypeAdded
	case len(d.Fields) > 0 || len(d.Objects) > 0 || slices.ContainsFunc(d.TaskGroups, func(g *TaskGroupDiff) bool { return g.Type != DiffTypeNone }):
		d.Type = DiffTypeEdited
	default:
		d.Type = DiffTypeNone
	}
	return d
}

func diffTaskGroup(old, cur *TaskGroup) *TaskGroupDiff {
	d := &TaskGroupDiff{}
	var ov, cv reflect.Value
	if old != nil {
		d.Name, ov = old.Name, reflect.ValueOf(old).Elem()
	}
	if cur != nil {
		d.Name, cv = cur.Name, reflect.ValueOf(cur).Elem()
	}
	d.Fields, d.Objects = diffStruct(ov, cv, diffSkipGroup)
	d.Type = changeType(old != nil, cur != nil, len(d.Fields)+len(d.Objects) > 0)
	for _, f := range d.Fields {
		if f.Name != "Count" || f.Type != DiffTypeEdited {
			continue
		}
		o, _ := strconv.Atoi(f.Old)
		n, _ := strconv.Atoi(f.New)
		if n > o {
			f.Annotations = append(f.Annotations, AnnotationForcesCreate)
		} else if n < o {
			f.Annotations = append(f.Annotations, AnnotationForcesDestroy)
		}
	}
	var oldTasks, curTasks []*Task
	if old != nil {
		oldTasks = old.Tasks
	}
	if cur != nil {
		curTasks = cur.Tasks
	}
	for _, t := range curTasks {
		var prev *Task
		if old != nil {
			prev = old.LookupTask(t.Name)
		}
		d.Tasks = append(d.Tasks, diffTask(prev, t))
	}
	for _, t := range oldTasks {
		if cur == nil || cur.LookupTask(t.Name) == nil {
			d.Tasks = append(d.Tasks, diffTask(t, nil))
		}
	}
	sort.Slice(d.Tasks, func(i, j int) bool { return d.Tasks[i].Name < d.Tasks[j].Name })
	if d.Type == DiffTypeNone && slices.ContainsFunc(d.Tasks, func(t *TaskDiff) bool { return t.Type != DiffTypeNone }) {
		d.Type = DiffTypeEdited
	}
	return d
}

func diffTask(old, cur *Task) *TaskDiff {
	d := &TaskDiff{}
	var ov, cv reflect.Value
	var oldCfg, curCfg map[string]any
	if old != nil {
		d.Name, ov, oldCfg = old.Name, reflect.ValueOf(old).Elem(), old.Config
	}
	if cur != nil {
		d.Name, cv, curCfg = cur.Name, reflect.ValueOf(cur).Elem(), cur.Config
	}
	d.Fields, d.Objects = diffStruct(ov, cv, diffSkipTask)
	if cfg := diffFlatObject("Config", flattenAny(oldCfg, old != nil), flattenAny(curCfg, cur != nil)); cfg != nil {
		d.Objects = append([]*ObjectDiff{cfg}, d.Objects...)
	}
	d.Type = changeType(old != nil, cur != nil, len(d.Fields)+len(d.Objects) > 0)
	switch d.Type {
	case DiffTypeAdded:
		d.Annotations = []string{AnnotationForcesCreate}
	case DiffTypeDeleted:
		d.Annotations = []string{AnnotationForcesDestroy}
	case DiffTypeEdited:
		if TaskUpdateDestructive(old, cur) {
			d.Annotations = []string{AnnotationForcesDestructive}
		} else {
			d.Annotations = []string{AnnotationForcesInplaceUpdate}
		}
	}
	return d
}

func changeType(hadOld, hasCur, changed bool) string {
	switch {
	case !hadOld && hasCur:
		return DiffTypeAdded
	case hadOld && !hasCur:
		return DiffTypeDeleted
	case changed:
		return DiffTypeEdited
	}
	return DiffTypeNone
}

// diffStruct compares two struct values (an invalid Value is an absent
// object): primitive fields and string maps become fields, nested blocks
// objects. Fields named in skip are left out.
func diffStruct(old, cur reflect.Value, skip map[string]bool) ([]*FieldDiff, []*ObjectDiff) {
	var typ reflect.Type
	if cur.IsValid() {
		typ = cur.Type()
	} else {
		typ = old.Type()
	}
	oldFlat, curFlat := map[string]string{}, map[string]string{}
	var objects []*ObjectDiff
	var setFields []*FieldDiff
	for i := 0; i < typ.NumField(); i++ {
		sf := typ.Field(i)
		if !sf.IsExported() || skip[sf.Name] {
			continue
		}
		var of, cf reflect.Value
		if old.IsValid() {
			of = old.Field(i)
		}
		if cur.IsValid() {
			cf = cur.Field(i)
		}
		ft := sf.Type
		switch {
		case isPrimitive(ft) || ft == reflect.TypeFor[*bool]() || ft == reflect.TypeFor[*int]() || ft == reflect.TypeFor[*string]():
			if of.IsValid() {
				oldFlat[sf.Name] = primitiveString(of)
			}
			if cf.IsValid() {
				curFlat[sf.Name] = primitiveString(cf)
			}
		case ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String && isPrimitive(ft.Elem()):
			flattenMapInto(oldFlat, sf.Name, of)
			flattenMapInto(curFlat, sf.Name, cf)
		case ft.Kind() == reflect.Slice && isPrimitive(ft.Elem()):
			// a set of values: each added or removed one is a field
			setFields = append(setFields, sliceFields(sf.Name, of, cf)...)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct, ft.Kind() == reflect.Struct:
			if o := diffObject(sf.Name, derefStruct(of), derefStruct(cf)); o != nil {
				objects = append(objects, o)
			}
		case ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map:
			objects = append(objects, diffObjectSet(singular(sf.Name), of, cf)...)
		}
	}
	return append(diffFlat(oldFlat, curFlat), setFields...), objects
}

// sliceFields lists the values a primitive slice gained or lost, each as
// a field of the slice's name (Nomad's Datacenters diff).
func sliceFields(name string, old, cur reflect.Value) []*FieldDiff {
	ov, cv := primitiveValues(old), primitiveValues(cur)
	var fields []*FieldDiff
	for _, v := range cv {
		if !slices.Contains(ov, v) {
			fields = append(fields, &FieldDiff{Type: DiffTypeAdded, Name: name, New: v})
		}
	}
	for _, v := range ov {
		if !slices.Contains(cv, v) {
			fields = append(fields, &FieldDiff{Type: DiffTypeDeleted, Name: name, Old: v})
		}
	}
	return fields
}

func primitiveValues(v reflect.Value) []string {
	if !v.IsValid() {
		return nil
	}
	out := make([]string, 0, v.Len())
	for i := 0; i < v.Len(); i++ {
		out = append(out, primitiveString(v.Index(i)))
	}
	return out
}

// diffObject compares one nested block, nil when unchanged.
func diffObject(name string, old, cur reflect.Value) *ObjectDiff {
	if !old.IsValid() && !cur.IsValid() {
		return nil
	}
	fields, objects := diffStruct(old, cur, nil)
	if len(fields) == 0 && len(objects) == 0 {
		return nil
	}
	return &ObjectDiff{Type: changeType(old.IsValid(), cur.IsValid(), true), Name: name, Fields: fields, Objects: objects}
}

// diffObjectSet compares lists (or maps) of blocks as sets, as Nomad does
// for constraints, networks or services: an element that changed is one
// deleted and one added.
func diffObjectSet(name string, old, cur reflect.Value) []*ObjectDiff {
	oldElems, curElems := structElems(old), structElems(cur)
	key := func(v reflect.Value) string { return fmt.Sprintf("%v", flattenValue(v)) }
	oldKeys := map[string]bool{}
	for _, e := range oldElems {
		oldKeys[key(e)] = true
	}
	curKeys := map[string]bool{}
	var out []*ObjectDiff
	for _, e := range curElems {
		k := key(e)
		curKeys[k] = true
		if !oldKeys[k] {
			out = append(out, diffObject(name, reflect.Value{}, e))
		}
	}
	for _, e := range oldElems {
		if !curKeys[key(e)] {
			out = append(out, diffObject(name, e, reflect.Value{}))
		}
	}
	return slices.DeleteFunc(out, func(o *ObjectDiff) bool { return o == nil })
}

// structElems lists the struct elements of a slice or map of blocks (maps
// in key order).
func structElems(v reflect.Value) []reflect.Value {
	if !v.IsValid() {
		return nil
	}
	var out []reflect.Value
	switch v.Kind() {
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if e := derefStruct(v.Index(i)); e.IsValid() {
				out = append(out, e)
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			if e := derefStruct(v.MapIndex(k)); e.IsValid() {
				out = append(out, e)
			}
		}
	}
	return out
}

func derefStruct(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	if v.IsValid() && v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v
}

// flattenValue flattens any value into "path: value" pairs, Nomad's
// flatmap: maps as name[key], lists as name[i].
func flattenValue(v reflect.Value) map[string]string {
	out := map[string]string{}
	flattenInto(out, "", v)
	return out
}

func flattenInto(out map[string]string, prefix string, v reflect.Value) {
	join := func(p, n string) string {
		if p == "" {
			return n
		}
		return p + "." + n
	}
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				flattenInto(out, join(prefix, v.Type().Field(i).Name), v.Field(i))
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			flattenInto(out, fmt.Sprintf("%s[%v]", prefix, k), v.MapIndex(k))
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			out[prefix] = string(v.Bytes())
			return
		}
		for i := 0; i < v.Len(); i++ {
			flattenInto(out, fmt.Sprintf("%s[%d]", prefix, i), v.Index(i))
		}
	default:
		out[prefix] = primitiveString(v)
	}
}

// flattenAny flattens a free-form map (a task's config) with its keys at
// the top: image, args[0], port_map[0][db]. present false means the task
// does not exist on that side.
func flattenAny(m map[string]any, present bool) map[string]string {
	if !present {
		return nil
	}
	out := map[string]string{}
	for k, v := range m {
		flattenInto(out, k, reflect.ValueOf(v))
	}
	return out
}

func diffFlatObject(name string, old, cur map[string]string) *ObjectDiff {
	fields := diffFlat(old, cur)
	if len(fields) == 0 {
		return nil
	}
	return &ObjectDiff{Type: changeType(len(old) > 0, len(cur) > 0, true), Name: name, Fields: fields}
}

// diffFlat compares flattened fields, in name order; empty and absent
// are the same.
func diffFlat(old, cur map[string]string) []*FieldDiff {
	names := make([]string, 0, len(old)+len(cur))
	for n := range old {
		names = append(names, n)
	}
	for n := range cur {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []*FieldDiff
	for _, n := range names {
		o, hadOld := old[n]
		c, hasCur := cur[n]
		switch {
		case o == c:
			// an absent field is an empty one, as in Nomad's flatmap
			continue
		case !hadOld:
			out = append(out, &FieldDiff{Type: DiffTypeAdded, Name: n, New: c})
		case !hasCur:
			out = append(out, &FieldDiff{Type: DiffTypeDeleted, Name: n, Old: o})
		default:
			out = append(out, &FieldDiff{Type: DiffTypeEdited, Name: n, Old: o, New: c})
		}
	}
	return out
}

func flattenMapInto(out map[string]string, name string, m reflect.Value) {
	if !m.IsValid() {
		return
	}
	for _, k := range m.MapKeys() {
		out[name+"["+k.String()+"]"] = primitiveString(m.MapIndex(k))
	}
}

func isPrimitive(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// primitiveString formats as Nomad's flatmap does: durations as
// nanoseconds, floats without exponent.
func primitiveString(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// singular names one element of a list of blocks: Constraints →
// Constraint, Affinities → Affinity.
func singular(name string) string {
	switch {
	case strings.HasSuffix(name, "ies"):
		return strings.TrimSuffix(name, "ies") + "y"
	case strings.HasSuffix(name, "s"):
		return strings.TrimSuffix(name, "s")
	}
	return name
}
