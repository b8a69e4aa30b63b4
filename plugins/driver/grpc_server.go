package driver

import (
	"context"
	"time"

	"github.com/berth-dev/berth/plugins/driver/driverpb"
)

// grpcServer serves a Driver as driverpb.DriverServer in the plugin
// process. Every error goes out through toStatus.
type grpcServer struct {
	driverpb.UnimplementedDriverServer
	impl Driver
}

func (s *grpcServer) SetConfig(ctx context.Context, req *driverpb.SetConfigRequest) (*driverpb.SetConfigResponse, error) {
	cfg, err := unmarshalJSON[PluginConfig]("plugin config", req.GetPluginConfigJson())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.impl.SetConfig(ctx, cfg); err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.SetConfigResponse{}, nil
}

func (s *grpcServer) Fingerprint(ctx context.Context, _ *driverpb.FingerprintRequest) (*driverpb.FingerprintResponse, error) {
	fps, err := s.impl.Fingerprint(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &driverpb.FingerprintResponse{}
	for _, f := range fps {
		if f != nil {
			resp.Fingerprints = append(resp.Fingerprints, fingerprintToProto(f))
		}
	}
	return resp, nil
}

func (s *grpcServer) Capabilities(ctx context.Context, req *driverpb.CapabilitiesRequest) (*driverpb.CapabilitiesResponse, error) {
	c, err := s.impl.Capabilities(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.CapabilitiesResponse{Capabilities: capabilitiesToProto(c)}, nil
}

func (s *grpcServer) ValidateTaskConfig(ctx context.Context, req *driverpb.ValidateTaskConfigRequest) (*driverpb.ValidateTaskConfigResponse, error) {
	cfg, err := unmarshalJSON[TaskConfig]("task config", req.GetTaskConfigJson())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.impl.ValidateTaskConfig(ctx, cfg); err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.ValidateTaskConfigResponse{}, nil
}

func (s *grpcServer) StartTask(ctx context.Context, req *driverpb.StartTaskRequest) (*driverpb.StartTaskResponse, error) {
	cfg, err := unmarshalJSON[TaskConfig]("task config", req.GetTaskConfigJson())
	if err != nil {
		return nil, toStatus(err)
	}
	h, err := s.impl.StartTask(ctx, cfg)
	if err != nil {
		return nil, toStatus(err)
	}
	b, err := marshalJSON("task handle", h)
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.StartTaskResponse{TaskHandleJson: b}, nil
}

func (s *grpcServer) RecoverTask(ctx context.Context, req *driverpb.RecoverTaskRequest) (*driverpb.RecoverTaskResponse, error) {
	h, err := unmarshalJSON[TaskHandle]("task handle", req.GetTaskHandleJson())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.impl.RecoverTask(ctx, h); err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.RecoverTaskResponse{}, nil
}

func (s *grpcServer) WaitTask(ctx context.Context, req *driverpb.WaitTaskRequest) (*driverpb.WaitTaskResponse, error) {
	r, err := s.impl.WaitTask(ctx, req.GetTaskId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.WaitTaskResponse{Result: exitResultToProto(r)}, nil
}

func (s *grpcServer) StopTask(ctx context.Context, req *driverpb.StopTaskRequest) (*driverpb.StopTaskResponse, error) {
	timeout := time.Duration(req.GetTimeoutNanos())
	if err := s.impl.StopTask(ctx, req.GetTaskId(), timeout, req.GetSignal()); err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.StopTaskResponse{}, nil
}

func (s *grpcServer) DestroyTask(ctx context.Context, req *driverpb.DestroyTaskRequest) (*driverpb.DestroyTaskResponse, error) {
	if err := s.impl.DestroyTask(ctx, req.GetTaskId(), req.GetForce()); err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.DestroyTaskResponse{}, nil
}

func (s *grpcServer) InspectTask(ctx context.Context, req *driverpb.InspectTaskRequest) (*driverpb.InspectTaskResponse, error) {
	st, err := s.impl.InspectTask(ctx, req.GetTaskId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.InspectTaskResponse{Status: taskStatusToProto(st)}, nil
}

func (s *grpcServer) SignalTask(ctx context.Context, req *driverpb.SignalTaskRequest) (*driverpb.SignalTaskResponse, error) {
	if err := s.impl.SignalTask(ctx, req.GetTaskId(), req.GetSignal()); err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.SignalTaskResponse{}, nil
}

func (s *grpcServer) TaskStats(ctx context.Context, req *driverpb.TaskStatsRequest) (*driverpb.TaskStatsResponse, error) {
	u, err := s.impl.TaskStats(ctx, req.GetTaskId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverpb.TaskStatsResponse{Usage: usageToProto(u, 0)}, nil
}
