package lab

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The provisioning scripts, the Vagrantfile and the systemd units are
// checked with the real tools when they are installed (a developer's
// machine); CI does not install vagrant, so that check skips there.
// shellcheck comes with scripts/install-deps.sh, so CI must have it.

func lookTool(t *testing.T, name string, requiredInCI bool) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if requiredInCI && os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (scripts/install-deps.sh installs it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func TestProvisionScriptsShellcheck(t *testing.T) {
	sc := lookTool(t, "shellcheck", true)
	scripts, err := filepath.Glob("vagrant/*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no provisioning scripts found: %v", err)
	}
	out, err := exec.Command(sc, append([]string{"-x"}, scripts...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestVagrantfileValidates(t *testing.T) {
	vagrant := lookTool(t, "vagrant", false)
	run := func(env ...string) ([]byte, error) {
		cmd := exec.Command(vagrant, "validate")
		cmd.Dir = ".." // the repository root
		// Keep vagrant's per-project state out of the checkout.
		cmd.Env = append(os.Environ(), append(env, "VAGRANT_DOTFILE_PATH="+t.TempDir(), "VAGRANT_CHECKPOINT_DISABLE=1")...)
		return cmd.CombinedOutput()
	}
	if out, err := run(); err != nil {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
	if out, err := run("BERTH_SERVERS=1", "BERTH_AGENTS=0"); err != nil {
		t.Fatalf("vagrant validate with 1 server, 0 agents: %v\n%s", err, out)
	}
	if out, err := run("BERTH_SERVERS=0"); err == nil {
		t.Fatalf("vagrant validate accepted 0 servers:\n%s", out)
	}
}

// unitKeys reads the Key=Value lines of a systemd unit (last one wins).
func unitKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a key=value line: %q", path, line)
		}
		keys[k] = v
	}
	return keys
}

func TestSystemdUnits(t *testing.T) {
	for _, tc := range []struct{ role, killMode string }{{RoleServer, ""}, {RoleAgent, "process"}} {
		keys := unitKeys(t, filepath.Join("systemd", "berth-"+tc.role+".service"))
		want := "/usr/local/bin/berth " + tc.role + " -config /etc/berth/" + tc.role + ".hcl"
		if keys["ExecStart"] != want {
			t.Errorf("%s unit ExecStart = %q, want %q", tc.role, keys["ExecStart"], want)
		}
		if keys["Restart"] != "on-failure" || keys["LimitNOFILE"] == "" || keys["WantedBy"] != "multi-user.target" {
			t.Errorf("%s unit: Restart %q LimitNOFILE %q WantedBy %q", tc.role, keys["Restart"], keys["LimitNOFILE"], keys["WantedBy"])
		}
		if keys["KillMode"] != tc.killMode {
			t.Errorf("%s unit KillMode = %q, want %q", tc.role, keys["KillMode"], tc.killMode)
		}
	}
	if p, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify checks the units' syntax; that berth is not installed on
		// this machine is the one complaint expected.
		units, _ := filepath.Glob("systemd/*.service")
		out, _ := exec.Command(p, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.Contains(line, "/usr/local/bin/berth is not executable") {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
}
