package driver

import (
	"context"
	"time"
)

// supervisedDriver is the Supervisor's stable Driver: each call goes to
// the plugin process current at the time of the call.
type supervisedDriver struct{ s *Supervisor }

var _ Driver = (*supervisedDriver)(nil)

func (p *supervisedDriver) SetConfig(ctx context.Context, cfg *PluginConfig) error {
	d, err := p.s.currentDriver()
	if err != nil {
		return err
	}
	return d.SetConfig(ctx, cfg)
}

func (p *supervisedDriver) Fingerprint(ctx context.Context) ([]*Fingerprint, error) {
	d, err := p.s.currentDriver()
	if err != nil {
		return nil, err
	}
	return d.Fingerprint(ctx)
}

func (p *supervisedDriver) Capabilities(ctx context.Context, name string) (*Capabilities, error) {
	d, err := p.s.currentDriver()
	if err != nil {
		return nil, err
	}
	return d.Capabilities(ctx, name)
}

func (p *supervisedDriver) ValidateTaskConfig(ctx context.Context, cfg *TaskConfig) error {
	d, err := p.s.currentDriver()
	if err != nil {
		return err
	}
	return d.ValidateTaskConfig(ctx, cfg)
}

func (p *supervisedDriver) StartTask(ctx context.Context, cfg *TaskConfig) (*TaskHandle, error) {
	d, err := p.s.currentDriver()
	if err != nil {
		return nil, err
	}
	return d.StartTask(ctx, cfg)
}

func (p *supervisedDriver) RecoverTask(ctx context.Context, handle *TaskHandle) error {
	d, err := p.s.currentDriver()
	if err != nil {
		return err
	}
	return d.RecoverTask(ctx, handle)
}

func (p *supervisedDriver) WaitTask(ctx context.Context, taskID string) (*ExitResult, error) {
	d, err := p.s.currentDriver()
	if err != nil {
		return nil, err
	}
	return d.WaitTask(ctx, taskID)
}

func (p *supervisedDriver) StopTask(ctx context.Context, taskID string, timeout time.Duration, signal string) error {
	d, err := p.s.currentDriver()
	if err != nil {
		return err
	}
	return d.StopTask(ctx, taskID, timeout, signal)
}

func (p *supervisedDriver) DestroyTask(ctx context.Context, taskID string, force bool) error {
	d, err := p.s.currentDriver()
	if err != nil {
		return err
	}
	return d.DestroyTask(ctx, taskID, force)
}

func (p *supervisedDriver) InspectTask(ctx context.Context, taskID string) (*TaskStatus, error) {
	d, err := p.s.currentDriver()
	if err != nil {
		return nil, err
	}
	return d.InspectTask(ctx, taskID)
}

func (p *supervisedDriver) SignalTask(ctx context.Context, taskID string, signal string) error {
	d, err := p.s.currentDriver()
	if err != nil {
		return err
	}
	return d.SignalTask(ctx, taskID, signal)
}

func (p *supervisedDriver) TaskStats(ctx context.Context, taskID string) (*TaskResourceUsage, error) {
	d, err := p.s.currentDriver()
	if err != nil {
		return nil, err
	}
	return d.TaskStats(ctx, taskID)
}

func (p *supervisedDriver) ExecTask(ctx context.Context, taskID string, opts *ExecOptions) (int, error) {
	d, err := p.s.currentDriver()
	if err != nil {
		return 0, err
	}
	return d.ExecTask(ctx, taskID, opts)
}
