package network

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
var statusCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrInvalidRequest, codes.InvalidArgument},
	{ErrPortConflict, codes.AlreadyExists},
	{ErrNotConfigured, codes.FailedPrecondition},
	{ErrAddressesExhausted, codes.ResourceExhausted},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// toStatus turns a plugin error into a gRPC status carrying the code of
// the sentinel it wraps (codes.Unknown for none) and its message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, sc := range statusCodes {
		if errors.Is(err, sc.err) {
			return status.Error(sc.code, err.Error())
		}
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

// fromStatus turns an error returned by a networkpb client call back into
// a network error. ctx is the caller's: when it ended, its own error is
// the answer.
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
	if st.Code() == codes.Unavailable {
		// The connection to the plugin broke: the process died or is dying.
		return &remoteError{msg: ErrPluginUnavailable.Error() + ": " + st.Message(), kind: ErrPluginUnavailable}
	}
	var kind error
	for _, sc := range statusCodes {
		if st.Code() == sc.code {
			kind = sc.err
			break
		}
	}
	return &remoteError{msg: st.Message(), kind: kind}
}
