package nft

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/netlab"
	"github.com/berth-dev/berth/plugins/network"
)

// Run: go test -run '^$' -bench . -benchtime 1x ./plugins/nft/

func percentile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkAllocNetwork creates and destroys 200 bridge-mode allocation
// networks (namespace, veth, address, route, one port mapping) per b.N.
func BenchmarkAllocNetwork(b *testing.B) {
	const rounds = 200
	lab := netlab.New(b, "bench")
	node := lab.AddNode("a")
	p, _ := startPlugin(b, node, "10.88.1.0/24", network.RoutingHostGW)
	ctx := context.Background()
	var create, destroy []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := 0; i < rounds; i++ {
			id := fmt.Sprintf("bench-%d-%d", n, i)
			start := time.Now()
			if _, err := p.CreateNetwork(ctx, &network.AllocNetworkRequest{AllocID: id, Ports: []network.PortMapping{{Label: "http", HostPort: 20000 + i, ContainerPort: 80}}}); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if err := p.DestroyNetwork(ctx, id); err != nil {
				b.Fatal(err)
			}
			create, destroy = append(create, mid.Sub(start)), append(destroy, time.Since(mid))
		}
	}
	b.ReportMetric(ms(percentile(create, 0.5)), "create-p50-ms")
	b.ReportMetric(ms(percentile(create, 0.99)), "create-p99-ms")
	b.ReportMetric(ms(percentile(destroy, 0.5)), "destroy-p50-ms")
	b.ReportMetric(ms(percentile(destroy, 0.99)), "destroy-p99-ms")
}

// BenchmarkPortMappings installs N mappings on one node, then adds and
// removes one more mapping 50 times: the cost is one map element, so it
// stays flat from 10 to 1,000 (and the rule count stays constant).
func BenchmarkPortMappings(b *testing.B) {
	for _, size := range []int{10, 1000} {
		b.Run(fmt.Sprintf("mappings=%d", size), func(b *testing.B) {
			const rounds = 50
			lab := netlab.New(b, "benchports")
			node := lab.AddNode("a")
			p, _ := startPlugin(b, node, "10.88.1.0/24", network.RoutingHostGW)
			ctx := context.Background()
			ports := make([]network.PortMapping, size)
			for i := range ports {
				ports[i] = network.PortMapping{Label: fmt.Sprint(i), HostPort: 10000 + i, ContainerPort: 80, Protocol: "tcp"}
			}
			an, err := p.CreateNetwork(ctx, &network.AllocNetworkRequest{AllocID: "bulk", Ports: ports})
			if err != nil {
				b.Fatal(err)
			}
			st, err := p.Installed(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if st.Rules != size+9 {
				b.Fatalf("Rules = %d, want %d", st.Rules, size+9)
			}
			ip := mustAddr(b, an.IP)
			var add, del []time.Duration
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				for i := 0; i < rounds; i++ {
					e := []portElem{{key: portKey{proto: unix.IPPROTO_TCP, port: 60000}, target: portTarget(ip, 80)}}
					start := time.Now()
					if err := p.changePorts("extra", true, e); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if err := p.changePorts("extra", false, e); err != nil {
						b.Fatal(err)
					}
					add, del = append(add, mid.Sub(start)), append(del, time.Since(mid))
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(st.Rules-size), "rules")
			b.ReportMetric(float64(size), "elements")
			b.ReportMetric(us(percentile(add, 0.5)), "add-p50-us")
			b.ReportMetric(us(percentile(del, 0.5)), "remove-p50-us")
		})
	}
}
