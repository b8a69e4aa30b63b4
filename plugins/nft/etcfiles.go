package nft

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/plugins/network"
)

// writeEtcFiles writes the allocation's hosts and resolv.conf into its
// state directory; the driver mounts them at /etc/hosts and
// /etc/resolv.conf.
func (p *Plugin) writeEtcFiles(an *network.AllocNetwork, req *network.AllocNetworkRequest, ip netip.Addr) error {
	dir := p.allocDir(req.AllocID)
	var hosts bytes.Buffer
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if req.Hostname != "" {
		addr := "127.0.1.1"
		if ip.IsValid() {
			addr = ip.String()
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", addr, req.Hostname)
		if an.IP6 != "" {
			fmt.Fprintf(&hosts, "%s\t%s\n", an.IP6, req.Hostname)
		}
	}
	an.HostsPath = filepath.Join(dir, "hosts")
	if err := writeFileAtomic(an.HostsPath, hosts.Bytes()); err != nil {
		return err
	}
	an.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	return writeFileAtomic(an.ResolvConfPath, p.resolvConf(req.DNS))
}

func (p *Plugin) resolvConf(dns *network.DNSConfig) []byte {
	var servers, searches, options []string
	switch {
	case dns != nil:
		servers, searches, options = dns.Servers, dns.Searches, dns.Options
	case len(p.cfg.DNSServers) > 0:
		servers, searches = p.cfg.DNSServers, p.cfg.DNSSearches
	default:
		servers, searches, options = hostResolvConf()
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

// hostResolvConf reads the host's resolver settings, preferring
// systemd-resolved's upstream list: its 127.0.0.53 stub is unreachable from
// an allocation's namespace.
func hostResolvConf() (servers, searches, options []string) {
	for _, path := range []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			switch fields[0] {
			case "nameserver":
				if a, err := netip.ParseAddr(fields[1]); err == nil && !a.IsLoopback() {
					servers = append(servers, fields[1])
				}
			case "search":
				searches = fields[1:]
			case "options":
				options = fields[1:]
			}
		}
		f.Close()
		if len(servers) > 0 {
			return servers, searches, options
		}
	}
	return nil, searches, options
}
