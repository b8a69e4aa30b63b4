package exec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Driver names this plugin serves.
const (
	NameExec    = "exec"
	NameRawExec = "raw_exec"
)

// RawExecConfig is the raw_exec task config block:
//
//	config {
//	  command = "/bin/sh"          # required; a bare name is looked up in the task's PATH,
//	                               # a relative path is relative to the task dir
//	  args    = ["-c", "echo hi"]  # optional
//	}
type RawExecConfig struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
}

// ExecConfig is the exec task config block: RawExecConfig plus capability
// changes relative to the default set.
//
//	config {
//	  command  = "/bin/sleep"   # required; resolved inside the chroot
//	  args     = ["30"]
//	  cap_add  = ["NET_RAW"]    # optional, with or without the CAP_ prefix
//	  cap_drop = ["ALL"]        # optional; "ALL" drops every capability
//	}
type ExecConfig struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	CapAdd  []string `json:"cap_add,omitempty"`
	CapDrop []string `json:"cap_drop,omitempty"`
}

// ErrInvalidConfig marks a task config the driver cannot run.
var ErrInvalidConfig = errors.New("invalid task config")

// decodeStrict decodes raw into v, rejecting unknown options so that a
// typo ("comand") is reported instead of silently ignored.
func decodeStrict(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func parseRawExecConfig(raw json.RawMessage) (*RawExecConfig, error) {
	var c RawExecConfig
	if err := decodeStrict(raw, &c); err != nil {
		return nil, err
	}
	if strings.TrimSpace(c.Command) == "" {
		return nil, fmt.Errorf("%w: option \"command\" is required", ErrInvalidConfig)
	}
	return &c, nil
}

func parseExecConfig(raw json.RawMessage) (*ExecConfig, error) {
	var c ExecConfig
	if err := decodeStrict(raw, &c); err != nil {
		return nil, err
	}
	var errs []error
	if strings.TrimSpace(c.Command) == "" {
		errs = append(errs, fmt.Errorf("%w: option \"command\" is required", ErrInvalidConfig))
	}
	for _, opt := range []struct {
		name string
		caps []string
	}{{"cap_add", c.CapAdd}, {"cap_drop", c.CapDrop}} {
		for _, capName := range opt.caps {
			if _, err := normalizeCap(capName); err != nil {
				errs = append(errs, fmt.Errorf("%w: option %q: %w", ErrInvalidConfig, opt.name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &c, nil
}

// knownCaps are the Linux capabilities accepted in cap_add/cap_drop.
var knownCaps = map[string]bool{}

func init() {
	for _, c := range []string{
		"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
		"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
		"NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
		"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
		"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
		"SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
		"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
		"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
	} {
		knownCaps["CAP_"+c] = true
	}
}

// normalizeCap turns "net_raw" or "CAP_NET_RAW" into "CAP_NET_RAW"; "all"
// stays "ALL".
func normalizeCap(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" {
		return n, nil
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	if !knownCaps[n] {
		return "", fmt.Errorf("unknown capability %q", name)
	}
	return n, nil
}

// parseSignal turns "SIGTERM", "TERM" or "" (def) into a signal.
func parseSignal(name string, def syscall.Signal) (syscall.Signal, error) {
	if name == "" {
		return def, nil
	}
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	sig := unix.SignalNum(n)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", name)
	}
	return sig, nil
}
