package allocrunner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/agent/template"
)

// templateHook renders the task's templates before each start. Templates
// with envvars = true are parsed as env files and their variables join the
// task's environment (so the env is rebuilt after them).
type templateHook struct{}

func (templateHook) Name() string { return "templates" }

func (templateHook) Prestart(ctx context.Context, tr *taskRunner) error {
	task := tr.currentTask()
	if len(task.Templates) == 0 {
		return nil
	}
	tr.mu.Lock()
	env, td := tr.env, tr.taskDir
	tr.mu.Unlock()
	extra := map[string]string{}
	for _, t := range task.Templates {
		if _, err := template.Render(t, td.Dir, env); err != nil {
			return recoverable(EventTaskHookFailed, fmt.Errorf("render template %q: %w", t.DestPath, err))
		}
		if !t.Envvars {
			continue
		}
		data, err := os.ReadFile(filepath.Join(td.Dir, env.ReplaceEnv(t.DestPath)))
		if err != nil {
			return recoverable(EventTaskHookFailed, fmt.Errorf("read env template %q: %w", t.DestPath, err))
		}
		vars, err := template.ParseEnvFile(data)
		if err != nil {
			return unrecoverable(EventTaskHookFailed, fmt.Errorf("env template %q: %w", t.DestPath, err))
		}
		for k, v := range vars {
			extra[k] = v
		}
	}
	if len(extra) > 0 {
		tr.setEnv(extra)
	}
	return nil
}
