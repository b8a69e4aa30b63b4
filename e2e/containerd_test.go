package e2e

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/lab"
)

// TestLabContainerdTasks: agents share the lab's private containerd, each
// in its own containerd namespace; a containerd job pulled from a registry
// on the host's lab address runs on both agents, and `lab down` removes
// the containers, shims and mounts (checked by newLab's cleanup).
func TestLabContainerdTasks(t *testing.T) {
	requireLab(t)
	if _, err := exec.LookPath("containerd"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("containerd is not installed")
		}
		t.Skip("containerd is not installed")
	}
	subnet, err := lab.FreeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	_, ipnet, _ := net.ParseCIDR(subnet)
	host := net.IPv4(ipnet.IP[0], ipnet.IP[1], ipnet.IP[2], 1).String()
	regAddr := net.JoinHostPort(host, fmt.Sprint(30000+rand.IntN(10000)))
	l := newLabWith(t, lab.Options{Servers: 1, Agents: 2, Containerd: "yes", Subnet: subnet, InsecureRegistries: []string{regAddr}})

	// A registry on the host's lab address: the agents' containerd
	// driver fetches from inside their namespaces.
	ln, err := net.Listen("tcp", regAddr)
	if err != nil {
		t.Fatalf("registry listener: %v", err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	ref, err := name.ParseReference(regAddr+"/e2e/testapp:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, containerdtest.TestImage(t)); err != nil {
		t.Fatalf("push test image: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := map[string]any{"Job": map[string]any{
		"ID": "ctr", "Name": "ctr", "Type": "service", "Datacenters": []string{"dc1"},
		"TaskGroups": []any{map[string]any{
			"Name": "g", "Count": 2,
			"Constraints": []any{map[string]any{"Operand": "distinct_hosts", "RTarget": "true"}},
			"Tasks": []any{map[string]any{
				"Name": "t", "Driver": "containerd",
				"Config":    map[string]any{"image": ref.String(), "args": []string{"sleep", "1h"}},
				"Resources": map[string]any{"CPU": 20, "MemoryMB": 32},
			}},
		}},
	}}
	if err := registerJob(ctx, l.ServerHTTPAddrs()[0], spec); err != nil {
		t.Fatal(err)
	}
	if _, err := waitRunning(ctx, l, "ctr", 60*time.Second, func(by map[string]int) error {
		if by["agent-1"] != 1 || by["agent-2"] != 1 {
			return fmt.Errorf("running %v", by)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// One containerd for the lab; a shim per container, each in its
	// agent's containerd namespace.
	shims := map[string]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(b), l.ContainerdAddress) {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "-namespace" && i+1 < len(args) {
				shims[args[i+1]]++
			}
		}
	}
	for _, a := range l.NodesOf(lab.RoleAgent) {
		if shims[a.ContainerdNamespace] == 0 {
			t.Errorf("no shim in containerd namespace %s (shims: %v)", a.ContainerdNamespace, shims)
		}
	}
}
