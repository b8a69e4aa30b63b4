package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/agent/allocrunner"
	"github.com/berth-dev/berth/agent/clientapi"
	"github.com/berth-dev/berth/plugins/driver"
)

// allocsAPI is clientapi.Allocs over the agent's alloc runners.
type allocsAPI struct{ a *Agent }

var _ clientapi.Allocs = allocsAPI{}

func (a *Agent) runnerList() []*allocrunner.AllocRunner {
	a.runnersMu.Lock()
	defer a.runnersMu.Unlock()
	out := make([]*allocrunner.AllocRunner, 0, len(a.runners))
	for _, r := range a.runners {
		out = append(out, r.ar)
	}
	return out
}

func (x allocsAPI) runner(id string) (*allocrunner.AllocRunner, error) {
	x.a.runnersMu.Lock()
	defer x.a.runnersMu.Unlock()
	r := x.a.runners[id]
	if r == nil {
		return nil, fmt.Errorf("%w: %s", clientapi.ErrUnknownAlloc, id)
	}
	return r.ar, nil
}

// apiError maps the alloc runner's errors to the client API's.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, allocrunner.ErrUnknownTask):
		return fmt.Errorf("%w: %v", clientapi.ErrUnknownTask, err)
	case errors.Is(err, allocrunner.ErrTaskNotRunning):
		return fmt.Errorf("%w: %v", clientapi.ErrBadRequest, err)
	}
	return err
}

func (x allocsAPI) LogDir(id string) (string, error) {
	r, err := x.runner(id)
	if err != nil {
		return "", err
	}
	return r.LogDir(), nil
}

func (x allocsAPI) TaskNames(id string) ([]string, error) {
	r, err := x.runner(id)
	if err != nil {
		return nil, err
	}
	return r.TaskNames(), nil
}

func (x allocsAPI) Exec(ctx context.Context, id, task string, opts *driver.ExecOptions) (int, error) {
	r, err := x.runner(id)
	if err != nil {
		return 0, err
	}
	code, err := r.Exec(ctx, task, opts)
	return code, apiError(err)
}

func (x allocsAPI) Stats(ctx context.Context, id string) (map[string]*driver.TaskResourceUsage, error) {
	r, err := x.runner(id)
	if err != nil {
		return nil, err
	}
	u, err := r.Stats(ctx)
	return u, apiError(err)
}

func (x allocsAPI) Signal(ctx context.Context, id, task, signal string) error {
	r, err := x.runner(id)
	if err != nil {
		return err
	}
	return apiError(r.Signal(ctx, task, signal))
}

func (x allocsAPI) Restart(ctx context.Context, id, task string, all bool) error {
	r, err := x.runner(id)
	if err != nil {
		return err
	}
	return apiError(r.Restart(ctx, task, all))
}
