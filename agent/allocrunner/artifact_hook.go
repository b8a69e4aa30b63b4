package allocrunner

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/agent/artifact"
	"github.com/berth-dev/berth/structs"
)

// artifactHook downloads the task's artifacts into its directory, once:
// restarts reuse what was fetched, as in Nomad.
type artifactHook struct{}

func (artifactHook) Name() string { return "artifacts" }

func (artifactHook) Prestart(ctx context.Context, tr *taskRunner) error {
	task := tr.currentTask()
	if len(task.Artifacts) == 0 || tr.hookDone["artifacts"] {
		return nil
	}
	tr.emit(event(EventDownloading, tr.ar.now()).msg("Client is downloading artifacts").build())
	tr.mu.Lock()
	env, td := tr.env, tr.taskDir
	tr.mu.Unlock()
	for _, a := range task.Artifacts {
		if err := artifact.Fetch(ctx, a, td.Dir, env); err != nil {
			err = fmt.Errorf("fetch artifact %q: %w", a.GetterSource, err)
			tr.update(event(EventArtifactFailed, tr.ar.now()).msg(err.Error()).build(), "", func(*structs.TaskState) {})
			return recoverable(EventArtifactFailed, err)
		}
	}
	tr.hookDone["artifacts"] = true
	return nil
}
