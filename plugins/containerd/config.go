package containerd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/plugins/driver"
)

// Driver names served by this plugin.
const (
	NameContainerd = "containerd"
	NameDocker     = "docker"
)

// taskSpec is the driver-neutral result of decoding either config schema.
type taskSpec struct {
	Image          string
	Entrypoint     []string // nil: the image's ENTRYPOINT
	Command        []string // nil: the image's CMD (dropped when Entrypoint is set, as Docker does)
	WorkDir        string
	Privileged     bool
	CapAdd         []string
	CapDrop        []string
	Mounts         []mountSpec
	Labels         map[string]string
	Hostname       string
	Network        string // "", "host", "none"
	Auth           *driver.RegistryAuth
	ForcePull      bool
	Load           string
	Sysctl         map[string]string
	ReadonlyRootfs bool
	Ulimits        map[string]string
	DNSServers     []string
	PullTimeout    time.Duration // 0: defaultPullTimeout
}

// defaultPullTimeout is Nomad's image_pull_timeout default.
const defaultPullTimeout = 5 * time.Minute

// mountSpec is one mount; Source is resolved against the task dir later.
type mountSpec struct {
	Type     string // bind, volume, tmpfs (or any mount type for containerd)
	Source   string
	Target   string
	Readonly bool
	Options  []string
}

// dockerConfig is the subset of Nomad's docker driver config berth runs.
type dockerConfig struct {
	Image          string            `json:"image"`
	Command        string            `json:"command"`
	Args           []string          `json:"args"`
	Entrypoint     []string          `json:"entrypoint"`
	WorkDir        string            `json:"work_dir"`
	Privileged     bool              `json:"privileged"`
	CapAdd         []string          `json:"cap_add"`
	CapDrop        []string          `json:"cap_drop"`
	Volumes        []string          `json:"volumes"`
	Mount          blocks[dockerMnt] `json:"mount"`
	Mounts         blocks[dockerMnt] `json:"mounts"`
	Labels         blockMap          `json:"labels"`
	Hostname       string            `json:"hostname"`
	NetworkMode    string            `json:"network_mode"`
	Ports          []string          `json:"ports"`
	Auth           blocks[authBlock] `json:"auth"`
	AuthSoftFail   bool              `json:"auth_soft_fail"`
	ForcePull      bool              `json:"force_pull"`
	Load           string            `json:"load"`
	Sysctl         blockMap          `json:"sysctl"`
	ReadonlyRootfs bool              `json:"readonly_rootfs"`
	DNSServers     []string          `json:"dns_servers"`
	Ulimit         blockMap          `json:"ulimit"`
	PullTimeout    string            `json:"image_pull_timeout"`
}

type dockerMnt struct {
	Type         string            `json:"type"`
	Source       string            `json:"source"`
	Target       string            `json:"target"`
	Readonly     bool              `json:"readonly"`
	TmpfsOptions blocks[tmpfsOpts] `json:"tmpfs_options"`
}

type tmpfsOpts struct {
	Size int64 `json:"size"`
	Mode int64 `json:"mode"`
}

type authBlock struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Email         string `json:"email"`
	ServerAddress string `json:"server_address"`
}

// containerdConfig is the "containerd" driver's schema (close to
// nomad-driver-containerd).
type containerdConfig struct {
	Image          string            `json:"image"`
	Command        string            `json:"command"`
	Args           []string          `json:"args"`
	Entrypoint     []string          `json:"entrypoint"`
	Cwd            string            `json:"cwd"`
	Privileged     bool              `json:"privileged"`
	ReadonlyRootfs bool              `json:"readonly_rootfs"`
	CapAdd         []string          `json:"cap_add"`
	CapDrop        []string          `json:"cap_drop"`
	Mounts         blocks[ctrMount]  `json:"mounts"`
	Hostname       string            `json:"hostname"`
	Sysctl         blockMap          `json:"sysctl"`
	HostNetwork    bool              `json:"host_network"`
	Auth           blocks[authBlock] `json:"auth"`
	ForcePull      bool              `json:"force_pull"`
	Labels         blockMap          `json:"labels"`
}

type ctrMount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Target  string   `json:"target"`
	Options []string `json:"options"`
}

// blocks decodes an HCL block as JSON: one object or a list of them.
type blocks[T any] []T

func (b *blocks[T]) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var list []T
		if err := json.Unmarshal(data, &list); err != nil {
			return err
		}
		*b = list
		return nil
	}
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	var one T
	if err := json.Unmarshal(data, &one); err != nil {
		return err
	}
	*b = blocks[T]{one}
	return nil
}

// blockMap decodes a map attribute or block (object or list of objects),
// stringifying scalar values.
type blockMap map[string]string

func (m *blockMap) UnmarshalJSON(data []byte) error {
	var objs blocks[map[string]any]
	if err := objs.UnmarshalJSON(data); err != nil {
		return err
	}
	out := blockMap{}
	for _, o := range objs {
		for k, v := range o {
			switch v := v.(type) {
			case string:
				out[k] = v
			case float64, bool:
				out[k] = fmt.Sprint(v)
			default:
				return fmt.Errorf("%s: value must be a string", k)
			}
		}
	}
	*m = out
	return nil
}

// jsonKeys lists the json names of a struct type's fields.
func jsonKeys(v any) map[string]bool {
	keys := map[string]bool{}
	b, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	for k := range m {
		keys[k] = true
	}
	return keys
}

var (
	dockerKeys     = jsonKeys(dockerConfig{})
	containerdKeys = jsonKeys(containerdConfig{})
)

// ErrUnsupportedOption is wrapped by every "option not supported" error.
var ErrUnsupportedOption = errors.New("option not supported")

// decodeStrict rejects keys outside known, naming each one.
func decodeStrict(driverName string, raw json.RawMessage, known map[string]bool, into any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s driver config: %w", driverName, err)
	}
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	var errs []error
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("%s driver option %q is not supported by berth: %w", driverName, k, ErrUnsupportedOption))
	}
	if err := json.Unmarshal(raw, into); err != nil {
		errs = append(errs, fmt.Errorf("%s driver config: %w", driverName, err))
	}
	return errors.Join(errs...)
}

// parseTaskSpec decodes and validates cfg.DriverConfig for cfg.Driver.
func parseTaskSpec(cfg *driver.TaskConfig) (*taskSpec, error) {
	switch cfg.Driver {
	case NameDocker:
		return parseDocker(cfg.DriverConfig)
	case NameContainerd, "":
		return parseContainerd(cfg.DriverConfig)
	default:
		return nil, fmt.Errorf("driver %q is not served by the containerd plugin", cfg.Driver)
	}
}

func parseDocker(raw json.RawMessage) (*taskSpec, error) {
	var c dockerConfig
	if err := decodeStrict(NameDocker, raw, dockerKeys, &c); err != nil {
		return nil, err
	}
	var errs []error
	if c.Image == "" {
		errs = append(errs, errors.New(`docker driver option "image" is required`))
	}
	s := &taskSpec{
		Image: c.Image, Entrypoint: c.Entrypoint, WorkDir: c.WorkDir, Privileged: c.Privileged,
		CapAdd: c.CapAdd, CapDrop: c.CapDrop, Labels: c.Labels, Hostname: c.Hostname,
		ForcePull: c.ForcePull, Load: c.Load, Sysctl: c.Sysctl, ReadonlyRootfs: c.ReadonlyRootfs,
		Ulimits: c.Ulimit, DNSServers: c.DNSServers,
	}
	// Nomad: command replaces CMD and args follow it; args alone replace CMD.
	if c.Command != "" {
		s.Command = append([]string{c.Command}, c.Args...)
	} else if len(c.Args) > 0 {
		s.Command = c.Args
	}
	switch c.NetworkMode {
	case "", "bridge", "default":
	case "host", "none":
		s.Network = c.NetworkMode
	default:
		errs = append(errs, fmt.Errorf("docker driver option network_mode %q is not supported by berth (use \"\", bridge, host or none): %w", c.NetworkMode, ErrUnsupportedOption))
	}
	for _, v := range c.Volumes {
		m, err := parseVolume(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, m := range append(c.Mount, c.Mounts...) {
		ms := mountSpec{Type: m.Type, Source: m.Source, Target: m.Target, Readonly: m.Readonly}
		if ms.Type == "" {
			ms.Type = "volume" // Docker's default mount type
		}
		switch ms.Type {
		case "bind", "volume":
			if ms.Source == "" {
				errs = append(errs, fmt.Errorf("docker mount to %q: source is required", ms.Target))
			}
		case "tmpfs":
			for _, o := range m.TmpfsOptions {
				if o.Size > 0 {
					ms.Options = append(ms.Options, fmt.Sprintf("size=%d", o.Size))
				}
				if o.Mode > 0 {
					ms.Options = append(ms.Options, fmt.Sprintf("mode=%o", o.Mode))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("docker mount type %q is not supported by berth: %w", ms.Type, ErrUnsupportedOption))
		}
		if !strings.HasPrefix(ms.Target, "/") {
			errs = append(errs, fmt.Errorf("docker mount target %q must be an absolute path", ms.Target))
		}
		s.Mounts = append(s.Mounts, ms)
	}
	if len(c.Auth) > 0 {
		s.Auth = &driver.RegistryAuth{Username: c.Auth[0].Username, Password: c.Auth[0].Password}
	}
	if c.PullTimeout != "" {
		d, err := time.ParseDuration(c.PullTimeout)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("docker image_pull_timeout %q: not a positive duration", c.PullTimeout))
		}
		s.PullTimeout = d
	}
	for name, v := range c.Ulimit {
		if _, _, err := parseUlimit(name, v); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// parseVolume reads "host:container[:ro|rw]".
func parseVolume(v string) (mountSpec, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
		return mountSpec{}, fmt.Errorf("docker volume %q: want host_path:/container/path[:ro]", v)
	}
	m := mountSpec{Type: "bind", Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.Readonly = true
		case "rw":
		default:
			return mountSpec{}, fmt.Errorf("docker volume %q: mode %q is not ro or rw", v, parts[2])
		}
	}
	return m, nil
}

func parseContainerd(raw json.RawMessage) (*taskSpec, error) {
	var c containerdConfig
	if err := decodeStrict(NameContainerd, raw, containerdKeys, &c); err != nil {
		return nil, err
	}
	var errs []error
	if c.Image == "" {
		errs = append(errs, errors.New(`containerd driver option "image" is required`))
	}
	s := &taskSpec{
		Image: c.Image, Entrypoint: c.Entrypoint, WorkDir: c.Cwd, Privileged: c.Privileged,
		CapAdd: c.CapAdd, CapDrop: c.CapDrop, Hostname: c.Hostname, Sysctl: c.Sysctl,
		ReadonlyRootfs: c.ReadonlyRootfs, ForcePull: c.ForcePull, Labels: c.Labels,
	}
	if c.Command != "" {
		s.Command = append([]string{c.Command}, c.Args...)
	} else if len(c.Args) > 0 {
		s.Command = c.Args
	}
	if c.HostNetwork {
		s.Network = "host"
	}
	for _, m := range c.Mounts {
		if m.Target == "" || !strings.HasPrefix(m.Target, "/") {
			errs = append(errs, fmt.Errorf("containerd mount target %q must be an absolute path", m.Target))
		}
		if m.Type == "" {
			m.Type = "bind"
		}
		ms := mountSpec{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options}
		for _, o := range m.Options {
			if o == "ro" {
				ms.Readonly = true
			}
		}
		s.Mounts = append(s.Mounts, ms)
	}
	if len(c.Auth) > 0 {
		s.Auth = &driver.RegistryAuth{Username: c.Auth[0].Username, Password: c.Auth[0].Password}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}
