package allocrunner

import (
	"context"

	"github.com/berth-dev/berth/structs"
)

// taskDirHook points the task at its directory in the alloc dir (which the
// alloc runner built for every task) and emits Task Setup once.
type taskDirHook struct{}

func (taskDirHook) Name() string { return "task_dir" }

func (taskDirHook) Prestart(ctx context.Context, tr *taskRunner) error {
	td := tr.ar.allocDir.TaskDir(tr.name)
	tr.mu.Lock()
	tr.taskDir = td
	first := !tr.hookDone["task_dir"]
	tr.hookDone["task_dir"] = true
	tr.mu.Unlock()
	if first {
		tr.update(event(EventSetup, tr.ar.now()).msg("Building Task Directory").build(), "", func(*structs.TaskState) {})
	}
	return nil
}
