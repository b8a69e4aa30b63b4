package pluginproc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorCode pairs a contract's sentinel error with the gRPC code it
// travels as, so that errors.Is holds on the agent's side of the wire.
type ErrorCode struct {
	Err  error
	Code codes.Code
}

// StatusCodes is a contract's table of sentinels.
type StatusCodes []ErrorCode

// ToStatus turns a plugin error into a gRPC status carrying the code of
// the first sentinel it wraps (codes.Unknown for none) and its message.
func (t StatusCodes) ToStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, sc := range t {
		if errors.Is(err, sc.Err) {
			return status.Error(sc.Code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// FromStatus turns an error of a plugin client call back into the
// contract's error: the plugin's message, unwrapping to the sentinel its
// code stands for. ctx is the caller's: when it ended, its own error is
// the answer. A broken connection (the plugin died or is dying) is
// unavailable.
func (t StatusCodes) FromStatus(ctx context.Context, err, unavailable error) error {
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
		return &remoteError{msg: unavailable.Error() + ": " + st.Message(), kind: unavailable}
	}
	var kind error
	for _, sc := range t {
		if st.Code() == sc.Code {
			kind = sc.Err
			break
		}
	}
	return &remoteError{msg: st.Message(), kind: kind}
}

// remoteError is an error that came back from the plugin: its message is
// the plugin's, and it unwraps to the sentinel its status code stands for.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }
