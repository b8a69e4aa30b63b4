package network

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/plugins/network/networkpb"
)

// Handshake is shared by the agent and every network plugin. Its cookie
// value differs from the driver contract's, so a driver binary launched
// as a network plugin (or the reverse) fails the handshake instead of
// being dispensed. The cookie is not a secret.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "BERTH_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "network-7f3c9a51d08e4b62a9e5c1f04d7b3e86a2c5f9017e4d8b3a6c0f2e9d1b7a4c53",
}

// PluginName is the key the network plugin is dispensed under.
const PluginName = "network"

// ErrPluginUnavailable is returned (wrapped) by a Supervisor's Network
// while its plugin process is dead and not yet relaunched, and for calls
// whose connection to the plugin broke.
var ErrPluginUnavailable = errors.New("network plugin unavailable")

// GRPCPlugin is the go-plugin glue: in the plugin process Impl is served;
// in the agent GRPCClient returns a Network that calls the plugin.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Network
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	networkpb.RegisterNetworkServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Network speaking to the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewGRPCClient(conn), nil
}

// pluginSet is what both sides of go-plugin register.
func pluginSet(impl Network) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}
