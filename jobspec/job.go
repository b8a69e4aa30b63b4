package jobspec

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/structs"
)

// obj is a job (or part of one) in Nomad's API JSON shape. HCL is mapped to
// this shape and then decoded by structs exactly as a JSON job would be, so
// that both inputs get the same defaults (partial policy blocks completed
// from the job type's defaults, and so on).
type obj = map[string]any

// out builds one object from one node; each setter copies an argument only
// when the file sets it, so that "unset" stays distinguishable from zero.
type out struct {
	d *decoder
	n *node
	o obj
}

func (d *decoder) out(n *node) out { return out{d: d, n: n, o: obj{}} }

func (w out) str(attr, key string) {
	if w.d.has(w.n, attr) {
		w.o[key] = w.d.str(w.n, attr)
	}
}

func (w out) integer(attr, key string) {
	if w.d.has(w.n, attr) {
		w.o[key] = w.d.integer(w.n, attr)
	}
}

func (w out) float(attr, key string) {
	if w.d.has(w.n, attr) {
		w.o[key] = w.d.float(w.n, attr)
	}
}

func (w out) boolean(attr, key string) {
	if w.d.has(w.n, attr) {
		w.o[key] = w.d.boolean(w.n, attr)
	}
}

func (w out) dur(attr, key string) {
	if w.d.has(w.n, attr) {
		w.o[key] = int64(w.d.dur(w.n, attr))
	}
}

func (w out) size(attr, key string) {
	if w.d.has(w.n, attr) {
		w.o[key] = w.d.size(w.n, attr)
	}
}

func (w out) strs(attr, key string) {
	if w.d.has(w.n, attr) {
		w.o[key] = w.d.strs(w.n, attr)
	}
}

func (w out) strMap(typ, key string) {
	if m := w.d.stringMap(w.n, typ); m != nil {
		w.o[key] = m
	}
}

// single maps the one block of typ (if any) with fn into key.
func (w out) single(typ, key string, fn func(*node) obj) {
	if b := w.d.block(w.n, typ); b != nil {
		w.o[key] = fn(b)
	}
}

// list maps every block of typ with fn into key.
func (w out) list(typ, key string, fn func(*node) obj) {
	var l []obj
	for _, b := range w.d.blocksOf(w.n, typ) {
		if o := fn(b); o != nil {
			l = append(l, o)
		}
	}
	if l != nil {
		w.o[key] = l
	}
}

func (d *decoder) mapJob(n *node) *structs.Job {
	w := d.out(n)
	w.o["ID"] = n.label
	w.o["Name"] = n.label
	w.str("id", "ID")
	w.str("name", "Name")
	w.str("region", "Region")
	w.str("namespace", "Namespace")
	w.str("type", "Type")
	w.integer("priority", "Priority")
	w.boolean("all_at_once", "AllAtOnce")
	w.strs("datacenters", "Datacenters")
	w.str("node_pool", "NodePool")
	w.str("vault_namespace", "VaultNamespace")
	w.str("consul_namespace", "ConsulNamespace")
	for _, a := range []string{"vault_token", "consul_token"} {
		if d.has(n, a) {
			r := rangeOf(n, a)
			d.warn("%s:%d: %s is deprecated and ignored", r.Filename, r.Start.Line, a)
		}
	}
	w.list("constraint", "Constraints", d.mapConstraint)
	w.list("affinity", "Affinities", d.mapAffinity)
	w.list("spread", "Spreads", d.mapSpread)
	w.single("update", "Update", d.mapUpdate)
	w.single("migrate", "Migrate", d.mapMigrate)
	w.single("reschedule", "Reschedule", d.mapReschedule)
	w.single("periodic", "Periodic", d.mapPeriodic)
	w.single("parameterized", "ParameterizedJob", d.mapParameterized)
	w.strMap("meta", "Meta")
	w.list("group", "TaskGroups", d.mapGroup)
	d.checkUnique(n, "group", "group")

	if d.diags.HasErrors() {
		return nil
	}
	job, err := decodeAPIJSON(w.o)
	if err != nil {
		d.add(errAt(n.rng, "Invalid job", err.Error()))
		return nil
	}
	return job
}

// decodeAPIJSON turns the API-shaped map into a structs.Job.
func decodeAPIJSON(o obj) (*structs.Job, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	job := new(structs.Job)
	if err := json.Unmarshal(buf.Bytes(), job); err != nil {
		return nil, err
	}
	return job, nil
}

// checkUnique reports blocks of typ within n that share a label.
func (d *decoder) checkUnique(n *node, typ, what string) {
	seen := map[string]*node{}
	for _, b := range d.blocksOf(n, typ) {
		if prev, dup := seen[b.label]; dup {
			rng := b.labelRng
			if rng == (hcl.Range{}) {
				rng = b.rng
			}
			d.add(errAt(rng, "Duplicate "+what, fmt.Sprintf("A %s named %q was already defined at line %d.", what, b.label, prev.rng.Start.Line)))
			continue
		}
		seen[b.label] = b
	}
}

// constraint and affinity shorthands: `version = ">= 1.2"` means
// operator "version" with that value.
var constraintShorthands = []string{"version", "semver", "regexp", "set_contains", "set_contains_any", "set_contains_all"}

func (d *decoder) mapConstraint(n *node) obj {
	w := d.out(n)
	w.str("attribute", "LTarget")
	w.str("value", "RTarget")
	w.str("operator", "Operand")
	for _, s := range constraintShorthands {
		if d.has(n, s) {
			w.o["Operand"] = s
			w.o["RTarget"] = d.str(n, s)
		}
	}
	if d.has(n, "distinct_hosts") {
		if d.boolean(n, "distinct_hosts") {
			w.o["Operand"] = "distinct_hosts"
		} else {
			return nil
		}
	}
	if d.has(n, "distinct_property") {
		w.o["Operand"] = "distinct_property"
		w.o["LTarget"] = d.str(n, "distinct_property")
	}
	return w.o
}

func (d *decoder) mapAffinity(n *node) obj {
	w := d.mapConstraint(n)
	if w == nil {
		return nil
	}
	if d.has(n, "weight") {
		w["Weight"] = d.integer(n, "weight")
	}
	return w
}

func (d *decoder) mapSpread(n *node) obj {
	w := d.out(n)
	w.str("attribute", "Attribute")
	w.integer("weight", "Weight")
	w.list("target", "SpreadTarget", func(t *node) obj {
		tw := d.out(t)
		tw.o["Value"] = t.label
		tw.str("value", "Value")
		tw.integer("percent", "Percent")
		return tw.o
	})
	return w.o
}

func (d *decoder) mapUpdate(n *node) obj {
	w := d.out(n)
	w.dur("stagger", "Stagger")
	w.integer("max_parallel", "MaxParallel")
	w.str("health_check", "HealthCheck")
	w.dur("min_healthy_time", "MinHealthyTime")
	w.dur("healthy_deadline", "HealthyDeadline")
	w.dur("progress_deadline", "ProgressDeadline")
	w.integer("canary", "Canary")
	w.boolean("auto_revert", "AutoRevert")
	w.boolean("auto_promote", "AutoPromote")
	return w.o
}

func (d *decoder) mapMigrate(n *node) obj {
	w := d.out(n)
	w.integer("max_parallel", "MaxParallel")
	w.str("health_check", "HealthCheck")
	w.dur("min_healthy_time", "MinHealthyTime")
	w.dur("healthy_deadline", "HealthyDeadline")
	return w.o
}

func (d *decoder) mapReschedule(n *node) obj {
	w := d.out(n)
	w.integer("attempts", "Attempts")
	w.dur("interval", "Interval")
	w.dur("delay", "Delay")
	w.str("delay_function", "DelayFunction")
	w.dur("max_delay", "MaxDelay")
	w.boolean("unlimited", "Unlimited")
	return w.o
}

func (d *decoder) mapRestart(n *node) obj {
	w := d.out(n)
	w.integer("attempts", "Attempts")
	w.dur("interval", "Interval")
	w.dur("delay", "Delay")
	w.str("mode", "Mode")
	w.boolean("render_templates", "RenderTemplates")
	return w.o
}

func (d *decoder) mapPeriodic(n *node) obj {
	w := d.out(n)
	w.boolean("enabled", "Enabled")
	w.str("cron", "Spec")
	w.strs("crons", "Specs")
	w.o["SpecType"] = structs.PeriodicSpecCron
	w.boolean("prohibit_overlap", "ProhibitOverlap")
	w.str("time_zone", "TimeZone")
	d.checkCron(n)
	return w.o
}

func (d *decoder) mapParameterized(n *node) obj {
	w := d.out(n)
	w.str("payload", "Payload")
	w.strs("meta_required", "MetaRequired")
	w.strs("meta_optional", "MetaOptional")
	return w.o
}
