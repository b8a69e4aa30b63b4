package allocrunner

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/agent/logs"
)

// logHook opens the task's log FIFOs for reading before the driver
// connects the task to them; one logger serves every restart of the task.
// It is also run on recovery, to re-attach to the FIFOs of a running task.
type logHook struct{}

func (logHook) Name() string { return "logmon" }

func (logHook) Prestart(ctx context.Context, tr *taskRunner) error {
	tr.mu.Lock()
	if tr.hookDone["logmon"] {
		tr.mu.Unlock()
		return nil
	}
	tr.mu.Unlock()
	task := tr.currentTask()
	l, err := logs.NewTaskLogger(tr.ar.allocDir.LogDir, tr.name, task.LogConfig, tr.logger)
	if err != nil {
		return recoverable(EventSetupFailure, fmt.Errorf("open task logs: %w", err))
	}
	tr.mu.Lock()
	tr.hookDone["logmon"] = true
	tr.stdoutPath, tr.stderrPath = l.StdoutPath(), l.StderrPath()
	tr.closers = append(tr.closers, func() {
		if err := l.Close(); err != nil {
			tr.logger.Warn("close task logs", "error", err)
		}
		tr.mu.Lock()
		tr.hookDone["logmon"] = false
		tr.mu.Unlock()
	})
	tr.mu.Unlock()
	return nil
}
