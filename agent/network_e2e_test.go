package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent"
	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/internal/netlab"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

// Environment of the re-executed test process that runs inside its own
// network (and mount) namespace.
const (
	netnsChildEnv = "BERTH_TEST_IN_NETNS"
	berthBinEnv   = "BERTH_TEST_BINARY"
)

// inOwnNetns re-runs the calling test in a child process with fresh
// network and mount namespaces, so the bridge, routes, namespaces and
// nftables table the network plugin installs never touch the host's
// network, and every mount it makes disappears with the child. It
// returns true in the child, where the test body runs; in the parent it
// waits for the child and reports its result.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if netlab.IsRerunChild(t, netnsChildEnv) {
		// the parent's binary: used, not removed by this process's TestMain
		if b := os.Getenv(berthBinEnv); b != "" {
			berthOnce.Do(func() { berthBin = b })
			t.Cleanup(func() { berthBin = "" })
		}
		return true
	}
	netlab.RequireRoot(t)
	netlab.RequireTools(t, "ip", "nft")
	containerdtest.Require(t)
	bin := berthBinary(t)
	netlab.RerunInOwnNetns(t, netnsChildEnv, 5*time.Minute, berthBinEnv+"="+bin)
	return false
}

// A bridge-mode group for real: the nft plugin out of process, a docker
// task in containerd joined to the allocation's namespace, reached through
// the mapped host port on 127.0.0.1 and directly on the allocation IP;
// stopping the job removes its map elements and its namespace.
func TestAgentBridgeNetworkEndToEnd(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	h := containerdtest.Start(t)
	reg := containerdtest.Registry(t)
	image := containerdtest.BuildTestImage(t, reg, "e2e/net", "v1")
	bin := berthBinary(t)
	c := cluster(t, 1)
	cl := apiClient(t, c)
	dataDir := t.TempDir()
	cfg := agent.Config{
		DataDir: dataDir, NodeName: "net-agent", BindAddr: "127.0.0.1", GossipPort: -1,
		Servers:       c.HTTPAddrs(),
		PluginCommand: func(name string) *exec.Cmd { return exec.Command(bin, "plugin", name) },
		Containerd:    agent.ContainerdConfig{Address: h.Address, Namespace: h.Namespace, InsecureRegistries: []string{reg.Host}},
		NetworkPlugin: "nft",
	}
	// runs after the agent's shutdown (LIFO): whatever the test left, in
	// this namespace only
	t.Cleanup(func() {
		if err := agent.CleanupNetwork(context.Background(), cfg, nil); err != nil {
			t.Logf("cleanup network: %v", err)
		}
	})
	a := startAgent(t, cfg)

	job := testJob("webnet", structs.JobTypeService, 1, dockerTask("web", image, "serve", ":8080"))
	job.TaskGroups[0].Networks = []*structs.NetworkResource{{
		Mode: "bridge", Hostname: "webnet", DynamicPorts: []structs.Port{{Label: "http", To: 8080}},
	}}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var allocID string
	servertest.WaitFor(t, 90*time.Second, "web running", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 {
			allocID = al[0].ID
			if al[0].ClientStatus == structs.AllocClientStatusFailed {
				t.Fatalf("alloc failed: %+v", al[0].TaskStates["web"])
			}
		}
		return len(al) == 1 && al[0].ClientStatus == structs.AllocClientStatusRunning
	})
	alloc, _, err := cl.Allocations().Info(allocID, nil)
	if err != nil {
		t.Fatal(err)
	}
	hostPort := 0
	for _, p := range alloc.AllocatedResources.Shared.Ports {
		if p.Label == "http" {
			hostPort = p.Value
		}
	}
	n := a.AllocNetwork(allocID)
	if hostPort == 0 || n == nil || n.IP == "" || n.NamespacePath == "" {
		t.Fatalf("host port %d, alloc network %+v", hostPort, n)
	}
	if _, err := os.Stat(n.NamespacePath); err != nil {
		t.Fatalf("alloc netns: %v", err)
	}

	reachable := func(when string) {
		t.Helper()
		for _, addr := range []string{
			net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)), // DNAT from localhost
			net.JoinHostPort(n.IP, "8080"),                        // the allocation IP
		} {
			servertest.WaitFor(t, 20*time.Second, when+": web answers on "+addr, func() bool {
				body, err := httpGet("http://" + addr + "/")
				return err == nil && body == "ok webnet\n"
			})
		}
		if elems := portElements(t); !elems[strconv.Itoa(hostPort)] || !elems[n.IP] {
			t.Fatalf("%s: port map elements %v lack host port %d → %s", when, elems, hostPort, n.IP)
		}
	}
	reachable("started")

	// the plugin crashes: relaunched and reconciled, the allocation kept
	pid := a.NetworkPluginPid()
	if pid == 0 {
		t.Fatal("no network plugin pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 30*time.Second, "network plugin relaunched", func() bool {
		p := a.NetworkPluginPid()
		return p != 0 && p != pid
	})
	reachable("after a plugin crash")

	// the agent restarts: the persisted network is used again and kept
	a.Shutdown()
	a = startAgent(t, cfg)
	servertest.WaitFor(t, 30*time.Second, "alloc restored with its network", func() bool {
		got := a.AllocNetwork(allocID)
		return got != nil && got.IP == n.IP && got.NamespacePath == n.NamespacePath
	})
	reachable("after an agent restart")

	if _, _, err := cl.Jobs().Deregister(job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 30*time.Second, "alloc complete, its map elements and netns gone", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) != 1 || al[0].ClientStatus != structs.AllocClientStatusComplete {
			return false
		}
		elems := portElements(t)
		if elems[strconv.Itoa(hostPort)] || elems[n.IP] {
			return false
		}
		_, err := os.Stat(n.NamespacePath)
		return os.IsNotExist(err)
	})
	if _, err := httpGet("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)) + "/"); err == nil {
		t.Fatal("the host port still answers after the job stopped")
	}

	// -cleanup-network (agent stopped) leaves no table and no bridge
	a.Shutdown()
	if err := agent.CleanupNetwork(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nft", "list", "table", "inet", "berth").CombinedOutput(); err == nil {
		t.Fatalf("table inet berth still there after cleanup:\n%s", out)
	}
	if out, err := exec.Command("ip", "link", "show", "berth0").CombinedOutput(); err == nil {
		t.Fatalf("bridge still there after cleanup: %s", out)
	}
}

func httpGet(url string) (string, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

// portElements lists every value (addresses, ports) in the elements of
// the maps of `nft -j list table inet berth`.
func portElements(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("nft", "-j", "list", "table", "inet", "berth").Output()
	if err != nil {
		t.Fatalf("nft -j list table inet berth: %v", err)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("decode nft json: %v", err)
	}
	vals := map[string]bool{}
	for _, obj := range doc.Nftables {
		raw, ok := obj["map"]
		if !ok {
			continue
		}
		var m struct {
			Elem []any `json:"elem"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("decode nft map: %v", err)
		}
		for _, e := range m.Elem {
			collectScalars(e, vals)
		}
	}
	return vals
}

func collectScalars(v any, out map[string]bool) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			collectScalars(e, out)
		}
	case map[string]any:
		for _, e := range x {
			collectScalars(e, out)
		}
	case string:
		out[x] = true
	case float64:
		out[strconv.FormatFloat(x, 'f', -1, 64)] = true
	}
}
