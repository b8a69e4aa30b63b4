package driver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// MuxMember is one driver a Mux serves, under the driver names it
// answers to.
type MuxMember struct {
	// Name is the member's own name: its StateDir is the Mux's StateDir
	// joined with it.
	Name   string
	Driver Driver
	// Serves are the driver names ("containerd", "docker") routed to it.
	Serves []string
}

// Mux serves several drivers from one plugin process, so that the
// built-in drivers cost one process instead of one each: every Go
// process maps its own copy of the runtime's working set. Calls naming
// a driver are routed by that name; calls naming a task go to the
// member that started or recovered it.
type Mux struct {
	members []MuxMember
	byName  map[string]Driver

	mu     sync.Mutex
	byTask map[string]Driver
}

// NewMux returns a Driver serving every member. Names must be unique
// across members.
func NewMux(members ...MuxMember) (*Mux, error) {
	m := &Mux{members: members, byName: map[string]Driver{}, byTask: map[string]Driver{}}
	seen := map[string]bool{}
	for _, mem := range members {
		if mem.Name == "" || mem.Driver == nil || seen[mem.Name] {
			return nil, fmt.Errorf("driver mux: member %q: empty, nil or repeated", mem.Name)
		}
		seen[mem.Name] = true
		for _, n := range mem.Serves {
			if m.byName[n] != nil {
				return nil, fmt.Errorf("driver mux: driver name %q served twice", n)
			}
			m.byName[n] = mem.Driver
		}
	}
	return m, nil
}

func (m *Mux) named(name string) (Driver, error) {
	if d := m.byName[name]; d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("driver %q is not served by this plugin", name)
}

func (m *Mux) task(id string) (Driver, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.byTask[id]; d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("task %q: %w", id, ErrTaskNotFound)
}

func (m *Mux) remember(id string, d Driver) {
	m.mu.Lock()
	m.byTask[id] = d
	m.mu.Unlock()
}

// SetConfig configures every member with its own state directory.
func (m *Mux) SetConfig(ctx context.Context, cfg *PluginConfig) error {
	var errs []error
	for _, mem := range m.members {
		c := *cfg
		if c.StateDir != "" {
			c.StateDir = filepath.Join(cfg.StateDir, mem.Name)
		}
		if err := mem.Driver.SetConfig(ctx, &c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", mem.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Fingerprint joins the members' fingerprints. A member that fails
// reports its names undetected rather than hiding the others.
func (m *Mux) Fingerprint(ctx context.Context) ([]*Fingerprint, error) {
	var out []*Fingerprint
	for _, mem := range m.members {
		fps, err := mem.Driver.Fingerprint(ctx)
		if err != nil {
			for _, n := range mem.Serves {
				out = append(out, &Fingerprint{Name: n, HealthDescription: fmt.Sprintf("fingerprint: %v", err)})
			}
			continue
		}
		for _, fp := range fps {
			if slices.Contains(mem.Serves, fp.Name) {
				out = append(out, fp)
			}
		}
	}
	return out, nil
}

func (m *Mux) Capabilities(ctx context.Context, name string) (*Capabilities, error) {
	d, err := m.named(name)
	if err != nil {
		return nil, err
	}
	return d.Capabilities(ctx, name)
}

func (m *Mux) ValidateTaskConfig(ctx context.Context, cfg *TaskConfig) error {
	d, err := m.named(cfg.Driver)
	if err != nil {
		return err
	}
	return d.ValidateTaskConfig(ctx, cfg)
}

func (m *Mux) StartTask(ctx context.Context, cfg *TaskConfig) (*TaskHandle, error) {
	d, err := m.named(cfg.Driver)
	if err != nil {
		return nil, err
	}
	h, err := d.StartTask(ctx, cfg)
	if err == nil {
		m.remember(cfg.ID, d)
	}
	return h, err
}

func (m *Mux) RecoverTask(ctx context.Context, h *TaskHandle) error {
	if h == nil || h.Config == nil {
		return errors.New("recover: handle without a task config")
	}
	d, err := m.named(h.Config.Driver)
	if err != nil {
		return err
	}
	if err := d.RecoverTask(ctx, h); err != nil {
		return err
	}
	m.remember(h.Config.ID, d)
	return nil
}

func (m *Mux) WaitTask(ctx context.Context, id string) (*ExitResult, error) {
	d, err := m.task(id)
	if err != nil {
		return nil, err
	}
	return d.WaitTask(ctx, id)
}

func (m *Mux) StopTask(ctx context.Context, id string, timeout time.Duration, signal string) error {
	d, err := m.task(id)
	if err != nil {
		return err
	}
	return d.StopTask(ctx, id, timeout, signal)
}

// DestroyTask forgets the task once its driver no longer knows it.
func (m *Mux) DestroyTask(ctx context.Context, id string, force bool) error {
	d, err := m.task(id)
	if err != nil {
		return err
	}
	err = d.DestroyTask(ctx, id, force)
	if err == nil || errors.Is(err, ErrTaskNotFound) {
		m.mu.Lock()
		delete(m.byTask, id)
		m.mu.Unlock()
	}
	return err
}

func (m *Mux) InspectTask(ctx context.Context, id string) (*TaskStatus, error) {
	d, err := m.task(id)
	if err != nil {
		return nil, err
	}
	return d.InspectTask(ctx, id)
}

func (m *Mux) SignalTask(ctx context.Context, id string, signal string) error {
	d, err := m.task(id)
	if err != nil {
		return err
	}
	return d.SignalTask(ctx, id, signal)
}

func (m *Mux) TaskStats(ctx context.Context, id string) (*TaskResourceUsage, error) {
	d, err := m.task(id)
	if err != nil {
		return nil, err
	}
	return d.TaskStats(ctx, id)
}

func (m *Mux) ExecTask(ctx context.Context, id string, opts *ExecOptions) (int, error) {
	d, err := m.task(id)
	if err != nil {
		return 0, err
	}
	return d.ExecTask(ctx, id, opts)
}
