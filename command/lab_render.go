package command

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/lab"
)

// newLabRenderConfigCommand renders a node config from the lab templates,
// for provisioning outside the netns lab (lab/vagrant/provision.sh).
func newLabRenderConfigCommand() *cobra.Command {
	var (
		role, addr, dataDir, out, dc, nodeName, nodeClass string
		ctrAddr, ctrNS, logLevel                          string
		index                                             int
		servers                                           []string
		rawExec                                           bool
		ttl, grace                                        time.Duration
	)
	cmd := &cobra.Command{
		Use:    "render-config",
		Short:  "Render a server or agent config file from the lab templates",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ips := splitList(servers)
			if len(ips) == 0 {
				return usageErrorf("-servers is required: the servers' IP addresses")
			}
			gossip, httpAddrs := lab.ServerAddrs(ips)
			if nodeName == "" {
				nodeName = role + "-" + strconv.Itoa(index)
			}
			b, err := lab.RenderConfig(lab.ConfigData{
				Role: role, Node: nodeName, Datacenter: dc, DataDir: dataDir, Addr: addr, LogLevel: logLevel,
				BootstrapExpect: len(ips), Join: gossip, Servers: httpAddrs, NodeClass: nodeClass, RawExec: rawExec,
				ContainerdAddress: ctrAddr, ContainerdNamespace: ctrNS,
				Tuning: lab.Tuning{MinHeartbeatTTL: ttl, HeartbeatGrace: grace}.Strings(),
			})
			if err != nil {
				return usageErrorf("%v", err)
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return fmt.Errorf("render config: %w", err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "server", "server or agent")
	fl.IntVar(&index, "index", 1, "node index (names the node <role>-<index> unless -node-name)")
	fl.StringVar(&nodeName, "node-name", "", "node name")
	fl.StringVar(&addr, "addr", "", "this node's address (bind and advertise)")
	fl.StringArrayVar(&servers, "servers", nil, "server IP addresses (comma-separated or repeated)")
	fl.StringVar(&dataDir, "data-dir", "/var/lib/berth", "data dir")
	fl.StringVar(&dc, "dc", "dc1", "datacenter")
	fl.StringVar(&nodeClass, "node-class", "", "agent node class")
	fl.BoolVar(&rawExec, "raw-exec", true, "enable raw_exec on agents")
	fl.StringVar(&ctrAddr, "containerd-address", "", "agents' containerd socket (default: the agent's)")
	fl.StringVar(&ctrNS, "containerd-namespace", "berth", "agents' containerd namespace")
	fl.StringVar(&logLevel, "log-level", "info", "log level")
	fl.DurationVar(&ttl, "min-heartbeat-ttl", 0, "servers' min_heartbeat_ttl")
	fl.DurationVar(&grace, "heartbeat-grace", 0, "servers' heartbeat_grace")
	fl.StringVar(&out, "out", "-", "file to write (- for stdout)")
	return cmd
}
