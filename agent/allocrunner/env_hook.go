package allocrunner

import (
	"context"
	"os"
	"strings"

	"github.com/berth-dev/berth/agent/taskenv"
)

// Drivers that run tasks on the host filesystem: the task sees host paths
// for its directories (and the agent's environment), as in Nomad.
var hostFSDrivers = map[string]bool{"raw_exec": true}

// envHook builds the task's environment (NOMAD_*/BERTH_* variables, the
// env block interpolated, variables from envvars templates), used both for
// the task and to interpolate its driver config.
type envHook struct{}

func (envHook) Name() string { return "env" }

func (envHook) Prestart(ctx context.Context, tr *taskRunner) error {
	tr.mu.Lock()
	extra := tr.envExtra
	tr.mu.Unlock()
	tr.setEnv(extra)
	return nil
}

// setEnv rebuilds the environment with the given template variables.
func (tr *taskRunner) setEnv(templateEnv map[string]string) {
	task := tr.currentTask()
	td := tr.ar.allocDir.TaskDir(tr.name)
	b := taskenv.NewBuilder(tr.ar.cfg.Node, tr.ar.alloc(), task, tr.ar.cfg.Region)
	if hostFSDrivers[task.Driver] {
		b.SetDirs(tr.ar.allocDir.SharedDir, td.LocalDir, td.SecretsDir).SetHostEnv(hostEnv())
	} else {
		b.SetDirs("/alloc", "/local", "/secrets")
	}
	if len(templateEnv) > 0 {
		b.SetTemplateEnv(templateEnv)
	}
	if n := tr.ar.allocNetwork(); n != nil && n.IP != "" {
		b.SetAllocIP(n.IP)
	}
	env := b.Build()
	tr.mu.Lock()
	tr.env = env
	tr.envExtra = templateEnv
	tr.mu.Unlock()
}

func hostEnv() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
