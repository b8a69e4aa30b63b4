package jobspec

import "sort"

func (d *decoder) mapService(n *node) obj {
	w := d.out(n)
	w.str("name", "Name")
	w.strs("tags", "Tags")
	w.strs("canary_tags", "CanaryTags")
	w.boolean("enable_tag_override", "EnableTagOverride")
	w.str("port", "PortLabel")
	w.str("address_mode", "AddressMode")
	w.str("address", "Address")
	w.str("task", "TaskName")
	w.str("on_update", "OnUpdate")
	w.str("provider", "Provider")
	w.str("cluster", "Cluster")
	w.str("kind", "Kind")
	w.list("check", "Checks", d.mapCheck)
	w.single("check_restart", "CheckRestart", d.mapCheckRestart)
	w.strMap("meta", "Meta")
	w.strMap("canary_meta", "CanaryMeta")
	w.strMap("tagged_addresses", "TaggedAddresses")
	w.single("weights", "Weights", func(b *node) obj {
		bw := d.out(b)
		bw.integer("passing", "Passing")
		bw.integer("warning", "Warning")
		return bw.o
	})
	return w.o
}

func (d *decoder) mapCheck(n *node) obj {
	w := d.out(n)
	w.str("name", "Name")
	w.str("type", "Type")
	w.str("command", "Command")
	w.strs("args", "Args")
	w.str("path", "Path")
	w.str("protocol", "Protocol")
	w.str("port", "PortLabel")
	w.boolean("expose", "Expose")
	w.str("address_mode", "AddressMode")
	w.str("advertise", "Advertise")
	w.dur("interval", "Interval")
	w.dur("timeout", "Timeout")
	w.str("initial_status", "InitialStatus")
	w.str("notes", "Notes")
	w.str("tls_server_name", "TLSServerName")
	w.boolean("tls_skip_verify", "TLSSkipVerify")
	w.str("method", "Method")
	w.str("grpc_service", "GRPCService")
	w.boolean("grpc_use_tls", "GRPCUseTLS")
	w.str("task", "TaskName")
	w.integer("success_before_passing", "SuccessBeforePassing")
	w.integer("failures_before_critical", "FailuresBeforeCritical")
	w.integer("failures_before_warning", "FailuresBeforeWarning")
	w.str("body", "Body")
	w.str("on_update", "OnUpdate")
	w.single("check_restart", "CheckRestart", d.mapCheckRestart)
	if h := d.freeMap(n, "header"); h != nil {
		hdr := map[string][]string{}
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch v := h[k].(type) {
			case []any:
				for _, e := range v {
					if s, ok := scalarString(e); ok {
						hdr[k] = append(hdr[k], s)
					}
				}
			default:
				if s, ok := scalarString(v); ok {
					hdr[k] = []string{s}
				}
			}
		}
		w.o["Header"] = hdr
	}
	return w.o
}

func (d *decoder) mapCheckRestart(n *node) obj {
	w := d.out(n)
	w.integer("limit", "Limit")
	w.dur("grace", "Grace")
	w.boolean("ignore_warnings", "IgnoreWarnings")
	return w.o
}
