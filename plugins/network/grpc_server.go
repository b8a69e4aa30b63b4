package network

import (
	"context"

	"github.com/berth-dev/berth/plugins/network/networkpb"
)

// grpcServer serves a Network as networkpb.NetworkServer in the plugin
// process. Every error goes out through toStatus.
type grpcServer struct {
	networkpb.UnimplementedNetworkServer
	impl Network
}

func (s *grpcServer) SetConfig(ctx context.Context, req *networkpb.SetConfigRequest) (*networkpb.SetConfigResponse, error) {
	cfg, err := unmarshalJSON[Config]("network config", req.GetConfigJson())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.impl.SetConfig(ctx, cfg); err != nil {
		return nil, toStatus(err)
	}
	return &networkpb.SetConfigResponse{}, nil
}

func (s *grpcServer) CreateNetwork(ctx context.Context, req *networkpb.CreateNetworkRequest) (*networkpb.CreateNetworkResponse, error) {
	r, err := unmarshalJSON[AllocNetworkRequest]("alloc network request", req.GetRequestJson())
	if err != nil {
		return nil, toStatus(err)
	}
	n, err := s.impl.CreateNetwork(ctx, r)
	if err != nil {
		return nil, toStatus(err)
	}
	b, err := marshalNonNil("alloc network", n)
	if err != nil {
		return nil, toStatus(err)
	}
	return &networkpb.CreateNetworkResponse{NetworkJson: b}, nil
}

func (s *grpcServer) DestroyNetwork(ctx context.Context, req *networkpb.DestroyNetworkRequest) (*networkpb.DestroyNetworkResponse, error) {
	if err := s.impl.DestroyNetwork(ctx, req.GetAllocId()); err != nil {
		return nil, toStatus(err)
	}
	return &networkpb.DestroyNetworkResponse{}, nil
}

func (s *grpcServer) SetPeers(ctx context.Context, req *networkpb.SetPeersRequest) (*networkpb.SetPeersResponse, error) {
	var peers []Peer
	if p, err := unmarshalJSON[[]Peer]("peers", req.GetPeersJson()); err != nil {
		return nil, toStatus(err)
	} else if p != nil {
		peers = *p
	}
	if err := s.impl.SetPeers(ctx, peers); err != nil {
		return nil, toStatus(err)
	}
	return &networkpb.SetPeersResponse{}, nil
}

func (s *grpcServer) Installed(ctx context.Context, _ *networkpb.InstalledRequest) (*networkpb.InstalledResponse, error) {
	st, err := s.impl.Installed(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	b, err := marshalNonNil("installed state", st)
	if err != nil {
		return nil, toStatus(err)
	}
	return &networkpb.InstalledResponse{StateJson: b}, nil
}

func (s *grpcServer) Reconcile(ctx context.Context, req *networkpb.ReconcileRequest) (*networkpb.ReconcileResponse, error) {
	if err := s.impl.Reconcile(ctx, req.GetKeep()); err != nil {
		return nil, toStatus(err)
	}
	return &networkpb.ReconcileResponse{}, nil
}

func (s *grpcServer) Cleanup(ctx context.Context, _ *networkpb.CleanupRequest) (*networkpb.CleanupResponse, error) {
	if err := s.impl.Cleanup(ctx); err != nil {
		return nil, toStatus(err)
	}
	return &networkpb.CleanupResponse{}, nil
}
