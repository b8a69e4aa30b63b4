package jobspec

import (
	"fmt"
	"time"

	"github.com/hashicorp/cronexpr"
)

func (d *decoder) mapGroup(n *node) obj {
	w := d.out(n)
	w.o["Name"] = n.label
	w.integer("count", "Count")
	w.dur("shutdown_delay", "ShutdownDelay")
	w.dur("stop_after_client_disconnect", "StopAfterClientDisconnect")
	w.dur("max_client_disconnect", "MaxClientDisconnect")
	w.boolean("prevent_reschedule_on_lost", "PreventRescheduleOnLost")
	w.list("constraint", "Constraints", d.mapConstraint)
	w.list("affinity", "Affinities", d.mapAffinity)
	w.list("spread", "Spreads", d.mapSpread)
	w.single("restart", "RestartPolicy", d.mapRestart)
	w.single("reschedule", "ReschedulePolicy", d.mapReschedule)
	w.single("update", "Update", d.mapUpdate)
	w.single("migrate", "Migrate", d.mapMigrate)
	w.single("disconnect", "Disconnect", func(b *node) obj {
		bw := d.out(b)
		bw.dur("lost_after", "LostAfter")
		bw.dur("stop_on_client_after", "StopOnClientAfter")
		bw.boolean("replace", "Replace")
		bw.str("reconcile", "Reconcile")
		return bw.o
	})
	w.single("ephemeral_disk", "EphemeralDisk", func(b *node) obj {
		bw := d.out(b)
		bw.boolean("sticky", "Sticky")
		bw.boolean("migrate", "Migrate")
		bw.size("size", "SizeMB")
		return bw.o
	})
	w.list("network", "Networks", d.mapNetwork)
	w.strMap("meta", "Meta")
	w.list("service", "Services", d.mapService)
	w.single("scaling", "Scaling", d.mapScaling)
	if vols := d.blocksOf(n, "volume"); len(vols) > 0 {
		m := obj{}
		for _, v := range vols {
			m[v.label] = d.mapVolume(v)
		}
		w.o["Volumes"] = m
		d.checkUnique(n, "volume", "volume")
	}
	w.list("task", "Tasks", d.mapTask)
	d.checkUnique(n, "task", "task")
	if len(d.blocksOf(n, "task")) == 0 {
		for _, s := range d.blocksOf(n, "service") {
			if c := d.block(s, "connect"); c != nil {
				what := "a Connect sidecar"
				if _, ok := c.free["gateway"]; ok {
					what = "a Consul Connect gateway"
				}
				d.add(errAt(n.rng, "Unsupported feature: Consul Connect", fmt.Sprintf("Group %q has no tasks of its own: they would be injected by %s (service %q), and berth does not support Consul Connect.", n.label, what, d.str(s, "name"))))
				break
			}
		}
	}
	return w.o
}

func (d *decoder) mapVolume(n *node) obj {
	w := d.out(n)
	w.o["Name"] = n.label
	w.str("type", "Type")
	w.str("source", "Source")
	w.boolean("read_only", "ReadOnly")
	w.boolean("sticky", "Sticky")
	w.str("access_mode", "AccessMode")
	w.str("attachment_mode", "AttachmentMode")
	w.boolean("per_alloc", "PerAlloc")
	w.single("mount_options", "MountOptions", func(b *node) obj {
		bw := d.out(b)
		bw.str("fs_type", "FSType")
		bw.strs("mount_flags", "MountFlags")
		return bw.o
	})
	return w.o
}

func (d *decoder) mapScaling(n *node) obj {
	w := d.out(n)
	w.integer("min", "Min")
	w.integer("max", "Max")
	w.boolean("enabled", "Enabled")
	if p := d.freeMap(n, "policy"); p != nil {
		w.o["Policy"] = p
	}
	return w.o
}

// checkCron reports invalid cron expressions of a periodic block at the
// argument, with its line number.
func (d *decoder) checkCron(n *node) {
	var specs []string
	if d.has(n, "cron") {
		specs = append(specs, d.str(n, "cron"))
	}
	specs = append(specs, d.strs(n, "crons")...)
	if !d.has(n, "cron") && !d.has(n, "crons") {
		d.add(errAt(n.rng, "Missing cron", "A periodic block needs a cron (or crons) expression."))
	}
	for _, s := range specs {
		if _, err := cronexpr.Parse(s); err != nil {
			attr := "cron"
			if !d.has(n, "cron") {
				attr = "crons"
			}
			d.add(errAt(rangeOf(n, attr), "Invalid cron expression", fmt.Sprintf("%q: %v.", s, err)))
		}
	}
	if d.has(n, "time_zone") {
		if _, err := time.LoadLocation(d.str(n, "time_zone")); err != nil {
			d.add(errAt(rangeOf(n, "time_zone"), "Invalid time zone", fmt.Sprintf("%q: %v.", d.str(n, "time_zone"), err)))
		}
	}
}
