package jobspec

func (d *decoder) mapTask(n *node) obj {
	w := d.out(n)
	w.o["Name"] = n.label
	w.str("driver", "Driver")
	w.str("user", "User")
	w.dur("kill_timeout", "KillTimeout")
	w.str("kill_signal", "KillSignal")
	w.boolean("leader", "Leader")
	w.dur("shutdown_delay", "ShutdownDelay")
	w.str("kind", "Kind")
	w.single("lifecycle", "Lifecycle", func(b *node) obj {
		bw := d.out(b)
		bw.str("hook", "Hook")
		bw.boolean("sidecar", "Sidecar")
		return bw.o
	})
	if c := d.freeMap(n, "config"); c != nil {
		w.o["Config"] = c
	}
	w.list("constraint", "Constraints", d.mapConstraint)
	w.list("affinity", "Affinities", d.mapAffinity)
	w.strMap("env", "Env")
	w.list("service", "Services", d.mapService)
	w.single("resources", "Resources", d.mapResources)
	w.single("restart", "RestartPolicy", d.mapRestart)
	w.strMap("meta", "Meta")
	w.single("logs", "LogConfig", func(b *node) obj {
		bw := d.out(b)
		bw.integer("max_files", "MaxFiles")
		bw.integer("max_file_size", "MaxFileSizeMB")
		bw.boolean("disabled", "Disabled")
		if d.has(b, "enabled") {
			bw.o["Enabled"] = d.boolean(b, "enabled")
			if !d.boolean(b, "enabled") {
				bw.o["Disabled"] = true
			}
		}
		return bw.o
	})
	w.list("artifact", "Artifacts", d.mapArtifact)
	w.list("template", "Templates", d.mapTemplate)
	w.single("dispatch_payload", "DispatchPayload", func(b *node) obj {
		bw := d.out(b)
		bw.str("file", "File")
		return bw.o
	})
	w.list("volume_mount", "VolumeMounts", func(b *node) obj {
		bw := d.out(b)
		bw.str("volume", "Volume")
		bw.str("destination", "Destination")
		bw.boolean("read_only", "ReadOnly")
		bw.str("propagation_mode", "PropagationMode")
		bw.str("selinux_label", "SELinuxLabel")
		return bw.o
	})
	w.single("csi_plugin", "CSIPluginConfig", func(b *node) obj {
		bw := d.out(b)
		bw.str("id", "ID")
		bw.str("type", "Type")
		bw.str("mount_dir", "MountDir")
		bw.str("stage_publish_base_dir", "StagePublishBaseDir")
		bw.dur("health_timeout", "HealthTimeout")
		return bw.o
	})
	w.list("action", "Actions", func(b *node) obj {
		bw := d.out(b)
		bw.o["Name"] = b.label
		bw.str("command", "Command")
		bw.strs("args", "Args")
		return bw.o
	})
	return w.o
}

func (d *decoder) mapResources(n *node) obj {
	w := d.out(n)
	w.integer("cpu", "CPU")
	w.integer("cores", "Cores")
	w.size("memory", "MemoryMB")
	w.size("memory_max", "MemoryMaxMB")
	w.size("disk", "DiskMB")
	w.integer("iops", "IOPS")
	w.size("secrets", "SecretsMB")
	w.list("network", "Networks", d.mapNetwork)
	w.list("device", "Devices", func(b *node) obj {
		bw := d.out(b)
		bw.o["Name"] = b.label
		bw.integer("count", "Count")
		bw.list("constraint", "Constraints", d.mapConstraint)
		bw.list("affinity", "Affinities", d.mapAffinity)
		return bw.o
	})
	w.single("numa", "NUMA", func(b *node) obj {
		bw := d.out(b)
		bw.str("affinity", "Affinity")
		bw.strs("devices", "Devices")
		return bw.o
	})
	return w.o
}

func (d *decoder) mapArtifact(n *node) obj {
	w := d.out(n)
	w.str("source", "GetterSource")
	w.str("destination", "RelativeDest")
	w.str("mode", "GetterMode")
	w.boolean("insecure", "GetterInsecure")
	w.boolean("chown", "Chown")
	w.strMap("options", "GetterOptions")
	w.strMap("headers", "GetterHeaders")
	return w.o
}

func (d *decoder) mapTemplate(n *node) obj {
	w := d.out(n)
	w.str("source", "SourcePath")
	w.str("destination", "DestPath")
	w.str("data", "EmbeddedTmpl")
	w.str("change_mode", "ChangeMode")
	w.str("change_signal", "ChangeSignal")
	w.boolean("once", "Once")
	w.dur("splay", "Splay")
	w.str("perms", "Perms")
	w.integer("uid", "Uid")
	w.integer("gid", "Gid")
	w.str("left_delimiter", "LeftDelim")
	w.str("right_delimiter", "RightDelim")
	w.boolean("env", "Envvars")
	w.dur("vault_grace", "VaultGrace")
	w.boolean("error_on_missing_key", "ErrMissingKey")
	w.single("change_script", "ChangeScript", func(b *node) obj {
		bw := d.out(b)
		bw.str("command", "Command")
		bw.strs("args", "Args")
		bw.dur("timeout", "Timeout")
		bw.boolean("fail_on_error", "FailOnError")
		return bw.o
	})
	w.single("wait", "Wait", func(b *node) obj {
		bw := d.out(b)
		bw.dur("min", "Min")
		bw.dur("max", "Max")
		return bw.o
	})
	return w.o
}
