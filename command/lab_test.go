package command

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
)

// TestLabRenderConfigForVagrant renders configs the way
// lab/vagrant/provision.sh does and loads them as berth server and berth
// agent would.
func TestLabRenderConfigForVagrant(t *testing.T) {
	dir := t.TempDir()
	for _, role := range []string{"server", "agent"} {
		out := filepath.Join(dir, role+".hcl")
		cmd := newLabCommand()
		var stderr bytes.Buffer
		cmd.SetErr(&stderr)
		cmd.SetArgs([]string{"render-config", "--role", role, "--index", "2", "--addr", "192.168.56.12",
			"--servers", "192.168.56.11,192.168.56.12,192.168.56.13", "--data-dir", "/var/lib/berth",
			"--containerd-address", "/run/containerd/containerd.sock", "--out", out})
		if err := cmd.Execute(); err != nil {
			t.Fatalf("render %s: %v (%s)", role, err, stderr.String())
		}
		c := &cobra.Command{}
		if role == "server" {
			f := &serverFlags{}
			f.register(c, false)
			_ = c.ParseFlags([]string{"--config", out})
			if err := f.loadConfigFiles(c); err != nil {
				t.Fatal(err)
			}
			if f.node != "server-2" || f.bootstrapExpect != 3 || len(f.join) != 3 || f.bind != "192.168.56.12" {
				t.Errorf("server flags from rendered config: %+v", f)
			}
			continue
		}
		f := &agentFlags{}
		f.register(c)
		_ = c.ParseFlags([]string{"--config", out})
		if err := f.loadConfigFiles(c); err != nil {
			t.Fatal(err)
		}
		if f.node != "agent-2" || len(f.servers) != 3 || f.containerdAddr != "/run/containerd/containerd.sock" || !f.rawExec {
			t.Errorf("agent flags from rendered config: %+v", f)
		}
	}
}

func TestLabRenderConfigRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"render-config", "--role", "server", "--addr", "192.168.56.11"},                               // no servers
		{"render-config", "--role", "worker", "--addr", "192.168.56.11", "--servers", "192.168.56.11"}, // bad role
		{"render-config", "--role", "agent", "--addr", "nowhere", "--servers", "192.168.56.11"},        // bad address
	} {
		cmd := newLabCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(args)
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v: rendered", args)
		}
	}
}
