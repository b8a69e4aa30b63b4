// Package archtest keeps the dependency arrows of ARCHITECTURE.md honest.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth"

// allowed lists, for each package, the berth packages it may depend on
// (directly or not). A package not listed here may import anything but
// command.
var allowed = map[string][]string{
	"structs":   {},
	"fsm/state": {"structs"},
	"fsm":       {"structs", "fsm/state"},
	"scheduler": {"structs"},
	"jobspec":   {"structs"},
	"api":       {"structs"},
	"server":    {"structs", "fsm", "fsm/state", "scheduler"},
	// Plugin contracts stand alone; built-in plugins know only their
	// contract (and shared plugin plumbing), never the agent or servers.
	"plugins/driver":     {"plugins/driver/driverpb", "plugins/internal/pluginproc"},
	"plugins/network":    {"plugins/network/networkpb", "plugins/internal/pluginproc"},
	"plugins/containerd": {"plugins/driver", "plugins/driver/driverpb", "plugins/internal/pluginproc", "plugins/internal/ctrtask"},
	"plugins/exec":       {"plugins/driver", "plugins/driver/driverpb", "plugins/internal/pluginproc", "plugins/internal/ctrtask"},
	"plugins/nft":        {"plugins/network", "plugins/network/networkpb", "plugins/internal/pluginproc", "internal/nsutil"},
	"internal/nsutil":    {},
	// The agent talks to servers only through api and to plugins only
	// through their contracts.
	"agent": {"structs", "api", "plugins/driver", "plugins/driver/driverpb", "plugins/network", "plugins/network/networkpb",
		"plugins/internal/pluginproc", "agent/allocdir", "agent/taskenv", "agent/artifact", "agent/logs", "agent/state",
		"agent/template", "agent/allocrunner", "agent/clientapi", "agent/containerdproc", "agent/fingerprint", "agent/hoststats"},
	// Host stats read /proc and answer in the API's wire types.
	"agent/hoststats": {"api", "structs"},
}

type pkg struct {
	ImportPath string
	Deps       []string
	Standard   bool
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "-deps=false", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, dep := range p.Deps {
			if !strings.HasPrefix(dep, module+"/") {
				if rel == "structs" && strings.Contains(strings.Split(dep, "/")[0], ".") {
					t.Errorf("structs imports %s: it must stay standard library only", dep)
				}
				continue
			}
			d := strings.TrimPrefix(dep, module+"/")
			if d == "command" || strings.HasPrefix(d, "command/") {
				if rel != "" {
					t.Errorf("%s imports %s: nothing but main may import the CLI", rel, d)
				}
				continue
			}
			allow, ruled := allowed[rel]
			if !ruled {
				continue
			}
			ok := false
			for _, a := range allow {
				if d == a {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s depends on %s; allowed: %v", rel, d, allow)
			}
		}
		if _, ruled := allowed[rel]; ruled {
			seen++
		}
	}
	if seen != len(allowed) {
		t.Fatalf("checked %d of the %d ruled packages: a package was renamed?", seen, len(allowed))
	}
}
