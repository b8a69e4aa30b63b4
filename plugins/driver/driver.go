// Package driver is the contract between the agent and task driver
// plugins: the Go interface a driver implements, the types that cross the
// boundary, and (in grpc_*.go) the versioned gRPC glue over
// hashicorp/go-plugin that carries them between processes.
//
// A driver plugin process may serve several driver names (the containerd
// plugin serves "containerd" and "docker"; the exec plugin serves "exec"
// and "raw_exec"). Tasks are addressed by TaskConfig.ID, which the agent
// makes unique per allocation and task: "<alloc-id>/<task-name>".
package driver

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// ProtocolVersion is the version of this contract. It is the go-plugin
// protocol version: an agent refuses a plugin that speaks another one.
const ProtocolVersion = 1

// Driver is what a driver plugin implements. Every method must be safe for
// concurrent use. Methods taking a task ID return ErrTaskNotFound (wrapped
// or as is) for a task the driver does not know.
type Driver interface {
	// SetConfig is called once, right after the plugin starts, with the
	// agent's configuration for this plugin (PluginConfig).
	SetConfig(ctx context.Context, cfg *PluginConfig) error
	// Fingerprint reports every driver name the plugin serves, with health.
	Fingerprint(ctx context.Context) ([]*Fingerprint, error)
	// Capabilities of the driver serving name.
	Capabilities(ctx context.Context, name string) (*Capabilities, error)
	// ValidateTaskConfig checks a task's driver config (cfg.DriverConfig)
	// without starting anything; errors name the offending option.
	ValidateTaskConfig(ctx context.Context, cfg *TaskConfig) error

	// StartTask starts the task and returns the handle the agent persists
	// to recover it later. It returns once the task is running (or failed
	// to start); it does not wait for the task to exit.
	StartTask(ctx context.Context, cfg *TaskConfig) (*TaskHandle, error)
	// RecoverTask re-attaches to a task started earlier, by this or a
	// previous plugin process, from its persisted handle. A task that no
	// longer exists is ErrTaskNotFound; one that exited meanwhile is
	// recovered and WaitTask returns its exit at once.
	RecoverTask(ctx context.Context, handle *TaskHandle) error
	// WaitTask blocks until the task exits (or ctx ends) and returns how.
	WaitTask(ctx context.Context, taskID string) (*ExitResult, error)
	// StopTask sends signal (the driver's default when empty), waits up
	// to timeout for the task to exit, then kills it.
	StopTask(ctx context.Context, taskID string, timeout time.Duration, signal string) error
	// DestroyTask removes everything the task left behind (container,
	// snapshot, cgroup, mounts). With force it kills a running task first;
	// without, destroying a running task is an error.
	DestroyTask(ctx context.Context, taskID string, force bool) error
	// InspectTask returns the task's current status.
	InspectTask(ctx context.Context, taskID string) (*TaskStatus, error)
	// SignalTask delivers a signal ("SIGHUP", "SIGUSR1"…) to the task.
	SignalTask(ctx context.Context, taskID string, signal string) error
	// TaskStats samples the task's resource usage.
	TaskStats(ctx context.Context, taskID string) (*TaskResourceUsage, error)
	// ExecTask runs a command inside the task's environment, streaming its
	// standard streams, and returns its exit code once it ends.
	ExecTask(ctx context.Context, taskID string, opts *ExecOptions) (exitCode int, err error)
}

// PluginConfig is the agent's configuration of one plugin process.
type PluginConfig struct {
	// StateDir is a directory the plugin owns for its own state.
	StateDir string `json:",omitempty"`
	// Containerd is read by drivers built on containerd.
	Containerd *ContainerdConfig `json:",omitempty"`
	// RawExecEnabled turns the raw_exec driver on (off by default, as in
	// Nomad).
	RawExecEnabled bool `json:",omitempty"`
	// Extra is configuration for external plugins, free-form.
	Extra json.RawMessage `json:",omitempty"`
}

// ContainerdConfig says how to reach containerd and registries.
type ContainerdConfig struct {
	// Address is containerd's socket.
	Address string
	// Namespace is the containerd namespace all of this agent's
	// containers, images and snapshots live in.
	Namespace string
	// Snapshotter is the snapshotter to unpack into (default overlayfs).
	Snapshotter string `json:",omitempty"`
	// Mirrors maps a registry host ("docker.io") to mirror endpoints
	// ("http://127.0.0.1:5000"), tried in order before the registry.
	Mirrors map[string][]string `json:",omitempty"`
	// InsecureRegistries are hosts ("127.0.0.1:5000") spoken to over
	// plain HTTP.
	InsecureRegistries []string `json:",omitempty"`
	// Auth maps a registry host to credentials.
	Auth map[string]RegistryAuth `json:",omitempty"`
}

// RegistryAuth is a username/password (or token as password) for a host.
type RegistryAuth struct {
	Username string
	Password string
}

// Fingerprint is one driver name's detection and health on this node.
type Fingerprint struct {
	Name              string
	Detected          bool
	Healthy           bool
	HealthDescription string
	// Attributes become node attributes ("driver.docker.version"…).
	Attributes map[string]string
}

// Capabilities are what a driver can do.
type Capabilities struct {
	SendSignals bool
	Exec        bool
	// FSIsolation is "none", "chroot" or "image".
	FSIsolation string
	// NetNamespace reports that the driver can join a prepared network
	// namespace (TaskConfig.NetworkNamespace).
	NetNamespace bool
}

// TaskConfig is everything a driver needs to start one task. The agent has
// already interpolated DriverConfig and Env.
type TaskConfig struct {
	// ID is "<alloc-id>/<task-name>", unique on the node.
	ID        string
	AllocID   string
	TaskName  string
	JobID     string
	TaskGroup string
	Namespace string
	// Driver is the driver name the task asked for ("docker", "exec"…).
	Driver string
	// DriverConfig is the task's config block, as JSON.
	DriverConfig json.RawMessage
	Env          map[string]string
	User         string
	Resources    Resources
	// AllocDir is the allocation directory on the host; TaskDir is this
	// task's directory in it (holding local/ and secrets/); SharedDir is
	// AllocDir/alloc. Drivers mount them at /alloc, /local and /secrets.
	AllocDir  string
	TaskDir   string
	SharedDir string
	// StdoutPath and StderrPath are FIFOs the agent reads; the driver
	// connects the task's stdout and stderr to them.
	StdoutPath string
	StderrPath string
	// NetworkNamespace is a path (/var/run/netns/…) the task joins, or
	// empty for the host's network.
	NetworkNamespace string `json:",omitempty"`
	// Hostname for the task, when the driver sets one.
	Hostname string `json:",omitempty"`
	// HostsPath and ResolvConfPath are files prepared for the allocation's
	// network (bridge mode) that the driver mounts at /etc/hosts and
	// /etc/resolv.conf; empty: the driver's default.
	HostsPath      string `json:",omitempty"`
	ResolvConfPath string `json:",omitempty"`
	// Ports maps port labels to allocated host port and container port.
	Ports []PortMapping `json:",omitempty"`
}

// Resources are a task's limits.
type Resources struct {
	CPUShares   int64 // MHz, as the scheduler counts them; a cgroup weight
	Cores       []uint16
	MemoryMB    int64
	MemoryMaxMB int64 // 0: same as MemoryMB
	DiskMB      int64
}

// PortMapping is one allocated port.
type PortMapping struct {
	Label  string
	Host   int
	To     int
	HostIP string
}

// TaskHandle is what the agent persists to recover a task.
type TaskHandle struct {
	// Version of the driver's State layout.
	Version int
	Config  *TaskConfig
	// State is opaque driver state (JSON), given back on RecoverTask.
	State     json.RawMessage
	StartedAt time.Time
}

// ExitResult is how a task ended.
type ExitResult struct {
	ExitCode  int
	Signal    int
	OOMKilled bool
	// Err is set when the exit could not be determined.
	Err string `json:",omitempty"`
}

// Successful reports a clean exit.
func (r *ExitResult) Successful() bool {
	return r.ExitCode == 0 && r.Signal == 0 && !r.OOMKilled && r.Err == ""
}

// Task states reported by InspectTask.
const (
	TaskStateRunning = "running"
	TaskStateExited  = "exited"
	TaskStateUnknown = "unknown"
)

// TaskStatus is InspectTask's answer.
type TaskStatus struct {
	ID          string
	Name        string
	State       string
	StartedAt   time.Time
	CompletedAt time.Time
	ExitResult  *ExitResult
	// Attributes are driver-specific facts (container ID, PID…).
	Attributes map[string]string
}

// TaskResourceUsage is a sample of a task's usage, in Nomad's shape.
type TaskResourceUsage struct {
	Timestamp int64 // unix nanoseconds
	CPU       CPUUsage
	Memory    MemoryUsage
	PIDs      map[string]*TaskResourceUsage `json:",omitempty"`
}

// CPUUsage is CPU time used.
type CPUUsage struct {
	SystemMode       float64
	UserMode         float64
	TotalTicks       float64
	ThrottledPeriods uint64
	ThrottledTime    uint64
	Percent          float64
	Measured         []string
}

// MemoryUsage is memory used, in bytes.
type MemoryUsage struct {
	RSS      uint64
	Cache    uint64
	Swap     uint64
	Usage    uint64
	MaxUsage uint64
	Measured []string
}

// ExecOptions describe one exec session.
type ExecOptions struct {
	Command []string
	Tty     bool
	Stdin   io.Reader // nil: no input
	Stdout  io.Writer
	Stderr  io.Writer // unused with Tty: the terminal merges both
	// Resize receives terminal size changes (Tty only).
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Height uint16
	Width  uint16
}

// ErrTaskNotFound is returned for a task ID the driver does not know.
var ErrTaskNotFound = errTaskNotFound{}

type errTaskNotFound struct{}

func (errTaskNotFound) Error() string { return "task not found" }
