package driver

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus turns a driver error into a gRPC status, so that the agent can
// turn it back into the same kind of error (errors.Is holds across the
// wire for ErrTaskNotFound and the context errors).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, ErrTaskNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// remoteError is an error that came back from the plugin: its message is
// the plugin's, and it unwraps to the sentinel its status code stands for.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// fromStatus turns an error returned by a driverpb client call back into a
// driver error. ctx is the caller's: when it ended, its own error is the
// answer (wrapped by the remote message if the plugin sent one).
func fromStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	var kind error
	switch st.Code() {
	case codes.NotFound:
		kind = ErrTaskNotFound
	case codes.Canceled:
		kind = context.Canceled
	case codes.DeadlineExceeded:
		kind = context.DeadlineExceeded
	case codes.Unavailable:
		// The connection to the plugin broke: the process died or is dying.
		return &remoteError{msg: ErrPluginUnavailable.Error() + ": " + st.Message(), kind: ErrPluginUnavailable}
	}
	return &remoteError{msg: st.Message(), kind: kind}
}
