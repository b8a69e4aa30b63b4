package jobspec

// The job specification's block schema, mirroring Nomad's.

func ignoredBlock(what string) *spec {
	return &spec{free: true, optLabel: true, label: "name", ignored: what}
}

func freeBlock() *spec { return &spec{free: true, mapForm: true} }

var (
	constraintSpec = &spec{attrs: []string{
		"attribute", "operator", "value",
		// shorthands
		"version", "semver", "regexp", "set_contains", "distinct_hosts", "distinct_property",
	}}
	affinitySpec = &spec{attrs: []string{
		"attribute", "operator", "value", "weight",
		"version", "semver", "regexp", "set_contains_any", "set_contains_all",
	}}
	spreadSpec = &spec{
		attrs:  []string{"attribute", "weight"},
		blocks: map[string]*spec{"target": {label: "value", attrs: []string{"value", "percent"}, optLabel: true}},
	}
	updateSpec = &spec{attrs: []string{
		"stagger", "max_parallel", "health_check", "min_healthy_time", "healthy_deadline",
		"progress_deadline", "canary", "auto_revert", "auto_promote",
	}}
	migrateSpec    = &spec{attrs: []string{"max_parallel", "health_check", "min_healthy_time", "healthy_deadline"}}
	rescheduleSpec = &spec{attrs: []string{"attempts", "interval", "delay", "delay_function", "max_delay", "unlimited"}}
	restartSpec    = &spec{attrs: []string{"interval", "attempts", "delay", "mode", "render_templates"}}
	periodicSpec   = &spec{attrs: []string{"enabled", "cron", "crons", "prohibit_overlap", "time_zone"}}
	paramSpec      = &spec{attrs: []string{"payload", "meta_required", "meta_optional"}}

	portSpec    = &spec{label: "label", attrs: []string{"static", "to", "host_network", "ignore_collision"}}
	networkSpec = &spec{
		attrs: []string{"mode", "device", "cidr", "ip", "hostname", "mbits"},
		blocks: map[string]*spec{
			"dns":            {attrs: []string{"servers", "searches", "options"}},
			"port":           portSpec,
			"reserved_ports": portSpec,
			"cni":            {attrs: []string{"args"}},
		},
	}

	checkRestartSpec = &spec{attrs: []string{"limit", "grace", "ignore_warnings"}}
	checkSpec        = &spec{
		attrs: []string{
			"name", "type", "command", "args", "path", "protocol", "port", "expose", "address_mode",
			"advertise", "interval", "timeout", "initial_status", "notes", "tls_server_name",
			"tls_skip_verify", "method", "grpc_service", "grpc_use_tls", "task",
			"success_before_passing", "failures_before_critical", "failures_before_warning",
			"body", "on_update",
		},
		blocks: map[string]*spec{
			"header":        freeBlock(),
			"check_restart": checkRestartSpec,
		},
	}
	serviceSpec = &spec{
		attrs: []string{
			"name", "tags", "canary_tags", "enable_tag_override", "port", "address_mode",
			"address", "task", "on_update", "provider", "cluster", "kind",
		},
		blocks: map[string]*spec{
			"check":            checkSpec,
			"check_restart":    checkRestartSpec,
			"connect":          ignoredBlock("service connect (Consul service mesh) is not supported by berth and is ignored"),
			"identity":         ignoredBlock("service identity is not supported yet and is ignored"),
			"meta":             freeBlock(),
			"canary_meta":      freeBlock(),
			"tagged_addresses": freeBlock(),
			"weights":          {attrs: []string{"passing", "warning"}},
		},
	}

	volumeSpec = &spec{
		label: "name",
		attrs: []string{"type", "source", "read_only", "sticky", "access_mode", "attachment_mode", "per_alloc"},
		blocks: map[string]*spec{
			"mount_options": {attrs: []string{"fs_type", "mount_flags"}},
		},
	}
	scalingSpec = &spec{
		label: "type", optLabel: true,
		attrs:  []string{"min", "max", "enabled"},
		blocks: map[string]*spec{"policy": freeBlock()},
	}
	deviceSpec = &spec{
		label: "name",
		attrs: []string{"count"},
		blocks: map[string]*spec{
			"constraint": constraintSpec,
			"affinity":   affinitySpec,
		},
	}
	resourcesSpec = &spec{
		attrs: []string{"cpu", "cores", "memory", "memory_max", "disk", "iops", "secrets"},
		blocks: map[string]*spec{
			"network": networkSpec,
			"device":  deviceSpec,
			"numa":    {attrs: []string{"affinity", "devices"}},
		},
	}
	templateSpec = &spec{
		attrs: []string{
			"source", "destination", "data", "change_mode", "change_signal", "once", "splay",
			"perms", "uid", "gid", "left_delimiter", "right_delimiter", "env", "vault_grace",
			"error_on_missing_key",
		},
		blocks: map[string]*spec{
			"change_script": {attrs: []string{"command", "args", "timeout", "fail_on_error"}},
			"wait":          {attrs: []string{"min", "max"}},
		},
	}
	artifactSpec = &spec{
		attrs:  []string{"source", "destination", "mode", "insecure", "chown"},
		blocks: map[string]*spec{"options": freeBlock(), "headers": freeBlock()},
	}
	taskSpec = &spec{
		label: "name",
		attrs: []string{"driver", "user", "kill_timeout", "kill_signal", "leader", "shutdown_delay", "kind"},
		blocks: map[string]*spec{
			"lifecycle":        {attrs: []string{"hook", "sidecar"}},
			"config":           freeBlock(),
			"constraint":       constraintSpec,
			"affinity":         affinitySpec,
			"env":              freeBlock(),
			"service":          serviceSpec,
			"resources":        resourcesSpec,
			"restart":          restartSpec,
			"meta":             freeBlock(),
			"logs":             {attrs: []string{"max_files", "max_file_size", "enabled", "disabled"}},
			"artifact":         artifactSpec,
			"template":         templateSpec,
			"dispatch_payload": {attrs: []string{"file"}},
			"volume_mount":     {attrs: []string{"volume", "destination", "read_only", "propagation_mode", "selinux_label"}},
			"csi_plugin":       {attrs: []string{"id", "type", "mount_dir", "stage_publish_base_dir", "health_timeout"}},
			"action":           {label: "name", attrs: []string{"command", "args"}},
			"vault":            ignoredBlock("vault blocks are accepted but ignored: berth has no Vault integration; use berth Variables in templates"),
			"consul":           ignoredBlock("consul blocks are accepted but ignored: berth does not use Consul"),
			"identity":         ignoredBlock("identity blocks are accepted but ignored: berth issues a default workload identity"),
			"secret":           ignoredBlock("secret blocks are accepted but ignored: not supported yet"),
			"scaling":          ignoredBlock("task scaling (dynamic application sizing) is accepted but ignored"),
			"schedule":         ignoredBlock("task schedule blocks are accepted but ignored: not supported yet"),
		},
	}
	groupSpec = &spec{
		label: "name",
		attrs: []string{
			"count", "shutdown_delay", "stop_after_client_disconnect", "max_client_disconnect",
			"prevent_reschedule_on_lost",
		},
		blocks: map[string]*spec{
			"constraint":     constraintSpec,
			"affinity":       affinitySpec,
			"spread":         spreadSpec,
			"task":           taskSpec,
			"volume":         volumeSpec,
			"restart":        restartSpec,
			"disconnect":     {attrs: []string{"lost_after", "stop_on_client_after", "replace", "reconcile"}},
			"reschedule":     rescheduleSpec,
			"ephemeral_disk": {attrs: []string{"sticky", "migrate", "size"}},
			"update":         updateSpec,
			"migrate":        migrateSpec,
			"network":        networkSpec,
			"meta":           freeBlock(),
			"service":        serviceSpec,
			"scaling":        scalingSpec,
			"consul":         ignoredBlock("consul blocks are accepted but ignored: berth does not use Consul"),
			"vault":          ignoredBlock("vault blocks are accepted but ignored: berth has no Vault integration"),
		},
	}
	jobSpec = &spec{
		label: "id",
		attrs: []string{
			"region", "namespace", "id", "name", "type", "priority", "all_at_once", "datacenters",
			"node_pool", "vault_token", "consul_token", "vault_namespace", "consul_namespace",
		},
		blocks: map[string]*spec{
			"constraint":    constraintSpec,
			"affinity":      affinitySpec,
			"spread":        spreadSpec,
			"group":         groupSpec,
			"update":        updateSpec,
			"migrate":       migrateSpec,
			"reschedule":    rescheduleSpec,
			"periodic":      periodicSpec,
			"parameterized": paramSpec,
			"meta":          freeBlock(),
			"multiregion":   ignoredBlock("multiregion is accepted but ignored: berth runs each job in one region"),
			"ui":            ignoredBlock("ui blocks are accepted but ignored"),
			"vault":         ignoredBlock("vault blocks are accepted but ignored: berth has no Vault integration"),
			"consul":        ignoredBlock("consul blocks are accepted but ignored: berth does not use Consul"),
		},
	}
)

// topLevelBlocks are the blocks a job file may contain at its root.
var topLevelBlocks = []string{"job", "variable", "variables", "locals"}
