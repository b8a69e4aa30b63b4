package driver

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/berth-dev/berth/plugins/driver/driverpb"
)

// grpcClient is a Driver that calls a plugin through driverpb. Every error
// comes back through fromStatus.
type grpcClient struct {
	rpc driverpb.DriverClient
}

// NewGRPCClient returns a Driver calling the driver served on conn. The
// Supervisor is the usual way to get one; this is for tests and for
// callers that manage their own connection.
func NewGRPCClient(conn grpc.ClientConnInterface) Driver {
	return &grpcClient{rpc: driverpb.NewDriverClient(conn)}
}

var _ Driver = (*grpcClient)(nil)

func (c *grpcClient) SetConfig(ctx context.Context, cfg *PluginConfig) error {
	var b []byte // nil config stays nil on the plugin's side
	if cfg != nil {
		var err error
		if b, err = marshalJSON("plugin config", cfg); err != nil {
			return err
		}
	}
	_, err := c.rpc.SetConfig(ctx, &driverpb.SetConfigRequest{PluginConfigJson: b})
	return fromStatus(ctx, err)
}

func (c *grpcClient) Fingerprint(ctx context.Context) ([]*Fingerprint, error) {
	resp, err := c.rpc.Fingerprint(ctx, &driverpb.FingerprintRequest{})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	out := make([]*Fingerprint, 0, len(resp.GetFingerprints()))
	for _, f := range resp.GetFingerprints() {
		out = append(out, fingerprintFromProto(f))
	}
	return out, nil
}

func (c *grpcClient) Capabilities(ctx context.Context, name string) (*Capabilities, error) {
	resp, err := c.rpc.Capabilities(ctx, &driverpb.CapabilitiesRequest{Name: name})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	return capabilitiesFromProto(resp.GetCapabilities()), nil
}

// taskConfigJSON encodes cfg; nil stays empty so the plugin sees nil.
func taskConfigJSON(cfg *TaskConfig) ([]byte, error) {
	if cfg == nil {
		return nil, nil
	}
	return marshalJSON("task config", cfg)
}

func (c *grpcClient) ValidateTaskConfig(ctx context.Context, cfg *TaskConfig) error {
	b, err := taskConfigJSON(cfg)
	if err != nil {
		return err
	}
	_, err = c.rpc.ValidateTaskConfig(ctx, &driverpb.ValidateTaskConfigRequest{TaskConfigJson: b})
	return fromStatus(ctx, err)
}

func (c *grpcClient) StartTask(ctx context.Context, cfg *TaskConfig) (*TaskHandle, error) {
	b, err := taskConfigJSON(cfg)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.StartTask(ctx, &driverpb.StartTaskRequest{TaskConfigJson: b})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	h, err := unmarshalJSON[TaskHandle]("task handle", resp.GetTaskHandleJson())
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("start task %s: plugin returned no handle", cfg.ID)
	}
	return h, nil
}

func (c *grpcClient) RecoverTask(ctx context.Context, handle *TaskHandle) error {
	var b []byte
	if handle != nil {
		var err error
		if b, err = marshalJSON("task handle", handle); err != nil {
			return err
		}
	}
	_, err := c.rpc.RecoverTask(ctx, &driverpb.RecoverTaskRequest{TaskHandleJson: b})
	return fromStatus(ctx, err)
}

func (c *grpcClient) WaitTask(ctx context.Context, taskID string) (*ExitResult, error) {
	resp, err := c.rpc.WaitTask(ctx, &driverpb.WaitTaskRequest{TaskId: taskID})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	return exitResultFromProto(resp.GetResult()), nil
}

func (c *grpcClient) StopTask(ctx context.Context, taskID string, timeout time.Duration, signal string) error {
	_, err := c.rpc.StopTask(ctx, &driverpb.StopTaskRequest{
		TaskId: taskID, TimeoutNanos: int64(timeout), Signal: signal,
	})
	return fromStatus(ctx, err)
}

func (c *grpcClient) DestroyTask(ctx context.Context, taskID string, force bool) error {
	_, err := c.rpc.DestroyTask(ctx, &driverpb.DestroyTaskRequest{TaskId: taskID, Force: force})
	return fromStatus(ctx, err)
}

func (c *grpcClient) InspectTask(ctx context.Context, taskID string) (*TaskStatus, error) {
	resp, err := c.rpc.InspectTask(ctx, &driverpb.InspectTaskRequest{TaskId: taskID})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	return taskStatusFromProto(resp.GetStatus()), nil
}

func (c *grpcClient) SignalTask(ctx context.Context, taskID string, signal string) error {
	_, err := c.rpc.SignalTask(ctx, &driverpb.SignalTaskRequest{TaskId: taskID, Signal: signal})
	return fromStatus(ctx, err)
}

func (c *grpcClient) TaskStats(ctx context.Context, taskID string) (*TaskResourceUsage, error) {
	resp, err := c.rpc.TaskStats(ctx, &driverpb.TaskStatsRequest{TaskId: taskID})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	return usageFromProto(resp.GetUsage()), nil
}
