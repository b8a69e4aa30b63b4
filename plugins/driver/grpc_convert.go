package driver

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/berth-dev/berth/plugins/driver/driverpb"
)

// Conversions between driver types and their driverpb messages. Both
// directions live side by side so a field added to one is easy to add to
// the other.

func marshalJSON(what string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	return b, nil
}

// unmarshalJSON decodes b into a new T; empty b is nil (the caller sent nil).
func unmarshalJSON[T any](what string, b []byte) (*T, error) {
	if len(b) == 0 {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, nil
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func fingerprintToProto(f *Fingerprint) *driverpb.Fingerprint {
	return &driverpb.Fingerprint{
		Name: f.Name, Detected: f.Detected, Healthy: f.Healthy,
		HealthDescription: f.HealthDescription, Attributes: f.Attributes,
	}
}

func fingerprintFromProto(f *driverpb.Fingerprint) *Fingerprint {
	return &Fingerprint{
		Name: f.GetName(), Detected: f.GetDetected(), Healthy: f.GetHealthy(),
		HealthDescription: f.GetHealthDescription(), Attributes: f.GetAttributes(),
	}
}

func capabilitiesToProto(c *Capabilities) *driverpb.Capabilities {
	if c == nil {
		return nil
	}
	return &driverpb.Capabilities{
		SendSignals: c.SendSignals, Exec: c.Exec,
		FsIsolation: c.FSIsolation, NetNamespace: c.NetNamespace,
	}
}

func capabilitiesFromProto(c *driverpb.Capabilities) *Capabilities {
	if c == nil {
		return nil
	}
	return &Capabilities{
		SendSignals: c.GetSendSignals(), Exec: c.GetExec(),
		FSIsolation: c.GetFsIsolation(), NetNamespace: c.GetNetNamespace(),
	}
}

func exitResultToProto(r *ExitResult) *driverpb.ExitResult {
	if r == nil {
		return nil
	}
	return &driverpb.ExitResult{
		ExitCode: int64(r.ExitCode), Signal: int64(r.Signal),
		OomKilled: r.OOMKilled, Err: r.Err,
	}
}

func exitResultFromProto(r *driverpb.ExitResult) *ExitResult {
	if r == nil {
		return nil
	}
	return &ExitResult{
		ExitCode: int(r.GetExitCode()), Signal: int(r.GetSignal()),
		OOMKilled: r.GetOomKilled(), Err: r.GetErr(),
	}
}

func taskStatusToProto(s *TaskStatus) *driverpb.TaskStatus {
	if s == nil {
		return nil
	}
	return &driverpb.TaskStatus{
		Id: s.ID, Name: s.Name, State: s.State,
		StartedAt:   timeToProto(s.StartedAt),
		CompletedAt: timeToProto(s.CompletedAt),
		ExitResult:  exitResultToProto(s.ExitResult),
		Attributes:  s.Attributes,
	}
}

func taskStatusFromProto(s *driverpb.TaskStatus) *TaskStatus {
	if s == nil {
		return nil
	}
	return &TaskStatus{
		ID: s.GetId(), Name: s.GetName(), State: s.GetState(),
		StartedAt:   timeFromProto(s.GetStartedAt()),
		CompletedAt: timeFromProto(s.GetCompletedAt()),
		ExitResult:  exitResultFromProto(s.GetExitResult()),
		Attributes:  s.GetAttributes(),
	}
}

// maxStatsDepth bounds the recursion through TaskResourceUsage.PIDs, which
// a driver fills one level deep; a deeper tree is a driver bug, cut short
// rather than allowed to exhaust the stack.
const maxStatsDepth = 8

func usageToProto(u *TaskResourceUsage, depth int) *driverpb.TaskResourceUsage {
	if u == nil || depth > maxStatsDepth {
		return nil
	}
	out := &driverpb.TaskResourceUsage{
		Timestamp: u.Timestamp,
		Cpu: &driverpb.CPUUsage{
			SystemMode: u.CPU.SystemMode, UserMode: u.CPU.UserMode,
			TotalTicks: u.CPU.TotalTicks, ThrottledPeriods: u.CPU.ThrottledPeriods,
			ThrottledTime: u.CPU.ThrottledTime, Percent: u.CPU.Percent,
			Measured: u.CPU.Measured,
		},
		Memory: &driverpb.MemoryUsage{
			Rss: u.Memory.RSS, Cache: u.Memory.Cache, Swap: u.Memory.Swap,
			Usage: u.Memory.Usage, MaxUsage: u.Memory.MaxUsage,
			Measured: u.Memory.Measured,
		},
	}
	if len(u.PIDs) > 0 {
		out.Pids = make(map[string]*driverpb.TaskResourceUsage, len(u.PIDs))
		for pid, pu := range u.PIDs {
			out.Pids[pid] = usageToProto(pu, depth+1)
		}
	}
	return out
}

func usageFromProto(u *driverpb.TaskResourceUsage) *TaskResourceUsage {
	if u == nil {
		return nil
	}
	cpu, mem := u.GetCpu(), u.GetMemory()
	out := &TaskResourceUsage{
		Timestamp: u.GetTimestamp(),
		CPU: CPUUsage{
			SystemMode: cpu.GetSystemMode(), UserMode: cpu.GetUserMode(),
			TotalTicks: cpu.GetTotalTicks(), ThrottledPeriods: cpu.GetThrottledPeriods(),
			ThrottledTime: cpu.GetThrottledTime(), Percent: cpu.GetPercent(),
			Measured: cpu.GetMeasured(),
		},
		Memory: MemoryUsage{
			RSS: mem.GetRss(), Cache: mem.GetCache(), Swap: mem.GetSwap(),
			Usage: mem.GetUsage(), MaxUsage: mem.GetMaxUsage(),
			Measured: mem.GetMeasured(),
		},
	}
	if len(u.GetPids()) > 0 {
		out.PIDs = make(map[string]*TaskResourceUsage, len(u.GetPids()))
		for pid, pu := range u.GetPids() {
			out.PIDs[pid] = usageFromProto(pu)
		}
	}
	return out
}
