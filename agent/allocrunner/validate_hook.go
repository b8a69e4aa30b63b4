package allocrunner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/plugins/driver"
)

// validateHook refuses a task that cannot run on this node: an unknown
// driver, or a driver config the driver rejects. Neither gets better by
// restarting, so both fail the task at once.
type validateHook struct{}

func (validateHook) Name() string { return "validate" }

func (validateHook) Prestart(ctx context.Context, tr *taskRunner) error {
	task := tr.currentTask()
	if strings.TrimSpace(task.Driver) == "" {
		return unrecoverable(EventFailedValidation, errors.New("task has no driver"))
	}
	d, err := tr.ar.cfg.Drivers(task.Driver)
	if err != nil {
		if errors.Is(err, driver.ErrPluginUnavailable) {
			return recoverable(EventDriverFailure, fmt.Errorf("driver %q: %w", task.Driver, err))
		}
		return unrecoverable(EventFailedValidation, fmt.Errorf("driver %q is not available on this node: %w", task.Driver, err))
	}
	if tr.hookDone["validate"] {
		return nil
	}
	cfg := &driver.TaskConfig{ID: tr.taskID(), TaskName: task.Name, Driver: task.Driver}
	raw, err := jsonConfig(task.Config)
	if err != nil {
		return unrecoverable(EventFailedValidation, err)
	}
	cfg.DriverConfig = raw
	if err := d.ValidateTaskConfig(ctx, cfg); err != nil {
		if errors.Is(err, driver.ErrPluginUnavailable) {
			return recoverable(EventDriverFailure, err)
		}
		return unrecoverable(EventFailedValidation, fmt.Errorf("invalid driver config: %w", err))
	}
	tr.hookDone["validate"] = true
	return nil
}
