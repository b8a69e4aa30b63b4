package allocrunner

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-dev/berth/agent/taskenv"
	"github.com/berth-dev/berth/agent/template"
	"github.com/berth-dev/berth/structs"
)

// templateHook renders the task's templates before each start. Templates
// with envvars = true are parsed as env files and their variables join the
// task's environment (so the env is rebuilt after them). What it rendered,
// with the files each render read, is kept for the template watcher
// (template_watch.go), which re-renders while the attempt runs.
type templateHook struct{}

func (templateHook) Name() string { return "templates" }

// renderedTemplates is one prestart's renders: the env and directory they
// used and, per template, the files the render read.
type renderedTemplates struct {
	taskDir string
	env     *taskenv.Env
	tmpls   []*structs.Template
	deps    map[*structs.Template]template.Deps
}

func (templateHook) Prestart(ctx context.Context, tr *taskRunner) error {
	task := tr.currentTask()
	tr.mu.Lock()
	tr.rendered = nil
	tr.mu.Unlock()
	if len(task.Templates) == 0 {
		return nil
	}
	tr.mu.Lock()
	env, td := tr.env, tr.taskDir
	tr.mu.Unlock()
	rendered := &renderedTemplates{taskDir: td.Dir, env: env, tmpls: task.Templates,
		deps: map[*structs.Template]template.Deps{}}
	for _, t := range task.Templates {
		_, deps, err := template.RenderTracked(t, td.Dir, env)
		if err != nil {
			return recoverable(EventTaskHookFailed, fmt.Errorf("render template %q: %w", t.DestPath, err))
		}
		rendered.deps[t] = deps
	}
	extra, err := loadTemplateEnv(task.Templates, td.Dir, env)
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		tr.setEnv(extra)
	}
	tr.mu.Lock()
	tr.rendered = rendered
	tr.mu.Unlock()
	return nil
}

// loadTemplateEnv reads the variables of the envvars templates from their
// rendered files.
func loadTemplateEnv(tmpls []*structs.Template, taskDir string, env *taskenv.Env) (map[string]string, error) {
	extra := map[string]string{}
	for _, t := range tmpls {
		if !t.Envvars {
			continue
		}
		dest, err := template.Destination(t, taskDir, env)
		if err != nil {
			return nil, unrecoverable(EventTaskHookFailed, fmt.Errorf("env template %q: %w", t.DestPath, err))
		}
		data, err := os.ReadFile(dest)
		if err != nil {
			return nil, recoverable(EventTaskHookFailed, fmt.Errorf("read env template %q: %w", t.DestPath, err))
		}
		vars, err := template.ParseEnvFile(data)
		if err != nil {
			return nil, unrecoverable(EventTaskHookFailed, fmt.Errorf("env template %q: %w", t.DestPath, err))
		}
		for k, v := range vars {
			extra[k] = v
		}
	}
	return extra, nil
}
