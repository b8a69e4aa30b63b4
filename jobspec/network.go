package jobspec

func (d *decoder) mapNetwork(n *node) obj {
	w := d.out(n)
	w.str("mode", "Mode")
	w.str("device", "Device")
	w.str("cidr", "CIDR")
	w.str("ip", "IP")
	w.str("hostname", "Hostname")
	w.integer("mbits", "MBits")
	w.single("dns", "DNS", func(b *node) obj {
		bw := d.out(b)
		bw.strs("servers", "Servers")
		bw.strs("searches", "Searches")
		bw.strs("options", "Options")
		return bw.o
	})
	w.single("cni", "CNI", func(b *node) obj {
		bw := d.out(b)
		if m := d.strMap(b, "args"); m != nil {
			bw.o["Args"] = m
		}
		return bw.o
	})
	var reserved, dynamic []obj
	for _, p := range append(d.blocksOf(n, "port"), d.blocksOf(n, "reserved_ports")...) {
		pw := d.out(p)
		pw.o["Label"] = p.label
		pw.integer("static", "Value")
		pw.integer("to", "To")
		pw.str("host_network", "HostNetwork")
		pw.boolean("ignore_collision", "IgnoreCollision")
		if v, ok := pw.o["Value"].(int); ok && v != 0 {
			reserved = append(reserved, pw.o)
		} else {
			delete(pw.o, "Value")
			dynamic = append(dynamic, pw.o)
		}
	}
	d.checkUnique(n, "port", "port")
	if reserved != nil {
		w.o["ReservedPorts"] = reserved
	}
	if dynamic != nil {
		w.o["DynamicPorts"] = dynamic
	}
	return w.o
}
