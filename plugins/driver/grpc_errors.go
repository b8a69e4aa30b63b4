package driver

import (
	"context"

	"google.golang.org/grpc/codes"

	"github.com/berth-dev/berth/plugins/internal/pluginproc"
)

// statusCodes are the driver errors that keep their kind across the wire
// (errors.Is holds on the agent's side for them).
var statusCodes = pluginproc.StatusCodes{
	{Err: ErrTaskNotFound, Code: codes.NotFound},
	{Err: context.Canceled, Code: codes.Canceled},
	{Err: context.DeadlineExceeded, Code: codes.DeadlineExceeded},
}

// toStatus turns a driver error into a gRPC status.
func toStatus(err error) error { return statusCodes.ToStatus(err) }

// fromStatus turns an error returned by a driverpb client call back into a
// driver error; ctx is the caller's.
func fromStatus(ctx context.Context, err error) error {
	return statusCodes.FromStatus(ctx, err, ErrPluginUnavailable)
}
