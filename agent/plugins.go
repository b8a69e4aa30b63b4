package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/structs"
)

// builtinPlugins are re-executions of this binary ("berth plugin NAME"):
// one process serves every built-in driver.
var builtinPlugins = []string{"drivers"}

// pluginStartTimeout bounds one plugin's first launch.
const pluginStartTimeout = 30 * time.Second

// ErrUnknownDriver is returned for a driver name no plugin serves.
var ErrUnknownDriver = errors.New("unknown driver")

// pluginSet maps driver names to the drivers serving them: supervised
// plugin processes, or in-process drivers given in Config.Drivers.
type pluginSet struct {
	a  *Agent
	mu sync.Mutex
	// byName: driver name → driver
	byName map[string]driver.Driver
	procs  []*pluginProc
}

type pluginProc struct {
	name  string
	sup   *driver.Supervisor
	names []string // driver names it serves
}

func newPluginSet(a *Agent) *pluginSet {
	return &pluginSet{a: a, byName: map[string]driver.Driver{}}
}

// pluginConfig is what every plugin is configured with.
func (p *pluginSet) pluginConfig(name string) *driver.PluginConfig {
	c := p.a.cfg.Containerd
	return &driver.PluginConfig{
		StateDir: filepath.Join(p.a.cfg.DataDir, "plugins", name),
		Containerd: &driver.ContainerdConfig{
			Address: c.Address, Namespace: c.Namespace, Mirrors: c.Mirrors,
			InsecureRegistries: c.InsecureRegistries, Auth: c.Auth,
		},
		RawExecEnabled: p.a.cfg.RawExecEnabled,
	}
}

// start launches the plugins. A plugin that fails to start is logged and
// left out: the agent runs with the drivers it has.
func (p *pluginSet) start(ctx context.Context) {
	for name, d := range p.a.cfg.Drivers {
		if err := d.SetConfig(ctx, p.pluginConfig(name)); err != nil {
			p.a.logger.Warn("configure in-process driver", "driver", name, "error", err)
		}
		p.byName[name] = d
	}
	var cmds []struct {
		name string
		cmd  func() *exec.Cmd
	}
	if !p.a.cfg.DisableBuiltinPlugins {
		for _, name := range builtinPlugins {
			cmds = append(cmds, struct {
				name string
				cmd  func() *exec.Cmd
			}{name, func() *exec.Cmd { return p.a.cfg.PluginCommand(name) }})
		}
	}
	for _, path := range externalPlugins(p.a.cfg.PluginDir) {
		cmds = append(cmds, struct {
			name string
			cmd  func() *exec.Cmd
		}{filepath.Base(path), func() *exec.Cmd { return exec.Command(path) }})
	}
	var wg sync.WaitGroup
	for _, c := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); p.launch(ctx, c.name, c.cmd) }()
	}
	wg.Wait()
}

func (p *pluginSet) launch(ctx context.Context, name string, cmd func() *exec.Cmd) {
	proc := &pluginProc{name: name}
	proc.sup = driver.NewSupervisor(driver.SupervisorConfig{
		Name:    name,
		Command: cmd,
		Config:  p.pluginConfig(name),
		Logger:  p.a.cfg.Logger,
		OnRestart: func(ctx context.Context, d driver.Driver) {
			p.mu.Lock()
			names := map[string]bool{}
			for _, n := range proc.names {
				names[n] = true
			}
			p.mu.Unlock()
			p.a.logger.Warn("driver plugin restarted, recovering its tasks", "plugin", name)
			for _, r := range p.a.runnerList() {
				r.RecoverTasks(ctx, names, d)
			}
		},
	})
	sctx, cancel := context.WithTimeout(ctx, pluginStartTimeout)
	defer cancel()
	if err := proc.sup.Start(sctx); err != nil {
		p.a.logger.Error("driver plugin failed to start", "plugin", name, "error", err)
		return
	}
	fps, err := proc.sup.Driver().Fingerprint(sctx)
	if err != nil {
		p.a.logger.Error("driver plugin fingerprint failed", "plugin", name, "error", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, fp := range fps {
		if _, taken := p.byName[fp.Name]; taken {
			p.a.logger.Warn("driver served by two plugins, keeping the first", "driver", fp.Name, "plugin", name)
			continue
		}
		p.byName[fp.Name] = proc.sup.Driver()
		proc.names = append(proc.names, fp.Name)
	}
	p.procs = append(p.procs, proc)
}

// externalPlugins lists the executables in dir.
func externalPlugins(dir string) []string {
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 == 0 {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

// driver returns the driver serving name.
func (p *pluginSet) driver(name string) (driver.Driver, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.byName[name]
	if d == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownDriver, name)
	}
	return d, nil
}

func (p *pluginSet) names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for n := range p.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// fingerprint asks every distinct driver for its fingerprints.
func (p *pluginSet) fingerprint(ctx context.Context) (map[string]*structs.DriverInfo, error) {
	p.mu.Lock()
	var drivers []driver.Driver
	for _, d := range p.byName {
		if !slices.Contains(drivers, d) {
			drivers = append(drivers, d)
		}
	}
	p.mu.Unlock()
	out := map[string]*structs.DriverInfo{}
	var errs []error
	now := time.Now()
	for _, d := range drivers {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fps, err := d.Fingerprint(fctx)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, fp := range fps {
			out[fp.Name] = &structs.DriverInfo{
				Attributes: fp.Attributes, Detected: fp.Detected, Healthy: fp.Healthy,
				HealthDescription: fp.HealthDescription, UpdateTime: now,
			}
		}
	}
	// a driver whose plugin is down is reported undetected
	for _, n := range p.names() {
		if out[n] == nil {
			out[n] = &structs.DriverInfo{HealthDescription: "driver plugin unavailable", UpdateTime: now}
		}
	}
	return out, errors.Join(errs...)
}

func (p *pluginSet) stop() {
	p.mu.Lock()
	procs := p.procs
	p.mu.Unlock()
	for _, proc := range procs {
		proc.sup.Stop()
	}
}

// PluginPids returns the PID of every plugin process by plugin name (0
// while one is being relaunched): for operators' debugging and tests.
func (a *Agent) PluginPids() map[string]int {
	out := map[string]int{}
	if a.plugins == nil {
		return out
	}
	a.plugins.mu.Lock()
	defer a.plugins.mu.Unlock()
	for _, p := range a.plugins.procs {
		out[p.name] = p.sup.Pid()
	}
	return out
}
