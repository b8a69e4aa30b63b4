package network

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"

	"github.com/berth-dev/berth/plugins/network/networkpb"
)

// grpcClient is a Network that calls a plugin through networkpb. Every
// error comes back through fromStatus.
type grpcClient struct {
	rpc networkpb.NetworkClient
}

// NewGRPCClient returns a Network calling the network plugin served on
// conn. The Supervisor is the usual way to get one; this is for tests and
// for callers that manage their own connection.
func NewGRPCClient(conn grpc.ClientConnInterface) Network {
	return &grpcClient{rpc: networkpb.NewNetworkClient(conn)}
}

var _ Network = (*grpcClient)(nil)

func (c *grpcClient) SetConfig(ctx context.Context, cfg *Config) error {
	b, err := marshalNonNil("network config", cfg)
	if err != nil {
		return err
	}
	_, err = c.rpc.SetConfig(ctx, &networkpb.SetConfigRequest{ConfigJson: b})
	return fromStatus(ctx, err)
}

func (c *grpcClient) CreateNetwork(ctx context.Context, req *AllocNetworkRequest) (*AllocNetwork, error) {
	b, err := marshalNonNil("alloc network request", req)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.CreateNetwork(ctx, &networkpb.CreateNetworkRequest{RequestJson: b})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	n, err := unmarshalJSON[AllocNetwork]("alloc network", resp.GetNetworkJson())
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, fmt.Errorf("create network: plugin returned no network")
	}
	return n, nil
}

func (c *grpcClient) DestroyNetwork(ctx context.Context, allocID string) error {
	_, err := c.rpc.DestroyNetwork(ctx, &networkpb.DestroyNetworkRequest{AllocId: allocID})
	return fromStatus(ctx, err)
}

func (c *grpcClient) SetPeers(ctx context.Context, peers []Peer) error {
	var b []byte // nil stays nil on the plugin's side
	if peers != nil {
		var err error
		if b, err = marshalJSON("peers", peers); err != nil {
			return err
		}
	}
	_, err := c.rpc.SetPeers(ctx, &networkpb.SetPeersRequest{PeersJson: b})
	return fromStatus(ctx, err)
}

func (c *grpcClient) Installed(ctx context.Context) (*InstalledState, error) {
	resp, err := c.rpc.Installed(ctx, &networkpb.InstalledRequest{})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	st, err := unmarshalJSON[InstalledState]("installed state", resp.GetStateJson())
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("installed: plugin returned no state")
	}
	return st, nil
}

func (c *grpcClient) Reconcile(ctx context.Context, keep []string) error {
	_, err := c.rpc.Reconcile(ctx, &networkpb.ReconcileRequest{Keep: keep})
	return fromStatus(ctx, err)
}

func (c *grpcClient) Cleanup(ctx context.Context) error {
	_, err := c.rpc.Cleanup(ctx, &networkpb.CleanupRequest{})
	return fromStatus(ctx, err)
}

func marshalJSON(what string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	return b, nil
}

// marshalNonNil encodes v; a nil pointer stays empty so the other side
// sees nil.
func marshalNonNil[T any](what string, v *T) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return marshalJSON(what, v)
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
