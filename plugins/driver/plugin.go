package driver

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/plugins/driver/driverpb"
)

// Handshake is shared by the agent and every driver plugin. The cookie only
// tells a binary launched by hand that it is not meant to be run that way;
// it is not a secret.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "BERTH_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e57b0a246602a1a88d8770422b7f34186a4dcc648616d74055224f85be3bd131",
}

// PluginName is the key the driver plugin is dispensed under.
const PluginName = "driver"

// ErrPluginUnavailable is returned (wrapped) by a Supervisor's Driver while
// its plugin process is dead and not yet relaunched, and for calls whose
// connection to the plugin broke.
var ErrPluginUnavailable = errors.New("driver plugin unavailable")

// GRPCPlugin is the go-plugin glue: in the plugin process Impl is served;
// in the agent GRPCClient returns a Driver that calls the plugin.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Driver
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	driverpb.RegisterDriverServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Driver speaking to the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewGRPCClient(conn), nil
}

// pluginSet is what both sides of go-plugin register.
func pluginSet(impl Driver) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}
