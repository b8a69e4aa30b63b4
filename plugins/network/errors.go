package network

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/berth-dev/berth/plugins/internal/pluginproc"
)

// Errors a network plugin returns (wrapped) so the agent can tell them
// apart with errors.Is, across the wire too.
var (
	// ErrInvalidRequest: a request or config the plugin refuses (unknown
	// mode, bad CIDR, port outside the range…); nothing was installed.
	ErrInvalidRequest = errors.New("invalid network request")
	// ErrPortConflict: a port mapping collides with one already installed.
	ErrPortConflict = errors.New("port mapping conflict")
	// ErrNotConfigured: a call that needs SetConfig came before it.
	ErrNotConfigured = errors.New("network plugin not configured")
	// ErrAddressesExhausted: the node subnet has no free address.
	ErrAddressesExhausted = errors.New("no free address in node subnet")
)

// statusCodes pairs each sentinel with the gRPC code it travels as.
var statusCodes = pluginproc.StatusCodes{
	{Err: ErrInvalidRequest, Code: codes.InvalidArgument},
	{Err: ErrPortConflict, Code: codes.AlreadyExists},
	{Err: ErrNotConfigured, Code: codes.FailedPrecondition},
	{Err: ErrAddressesExhausted, Code: codes.ResourceExhausted},
	{Err: context.Canceled, Code: codes.Canceled},
	{Err: context.DeadlineExceeded, Code: codes.DeadlineExceeded},
}

// toStatus turns a plugin error into a gRPC status carrying the code of
// the sentinel it wraps (codes.Unknown for none) and its message.
func toStatus(err error) error { return statusCodes.ToStatus(err) }

// fromStatus turns an error returned by a networkpb client call back into
// a network error; ctx is the caller's.
func fromStatus(ctx context.Context, err error) error {
	return statusCodes.FromStatus(ctx, err, ErrPluginUnavailable)
}
