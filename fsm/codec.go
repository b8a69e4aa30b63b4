package fsm

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Payload versions 1 were JSON; from 2 on payloads are MessagePack, which
// is smaller and several times cheaper to decode for the large entries of
// plan results. Version 1 entries in old logs still decode.
const (
	payloadVersionJSON    = 1
	payloadVersionMsgpack = 2
)

// msgpackHandle decodes free-form values (task configs) as they came in:
// maps keyed by strings, strings as strings.
var msgpackHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.RawToString = true
	h.WriteExt = true
	h.MapType = reflect.TypeOf(map[string]any(nil))
	return h
}()

func encodePayload(buf *bytes.Buffer, payload any) error {
	return codec.NewEncoder(buf, msgpackHandle).Encode(payload)
}

func decodePayload(version uint8, data []byte, out any) error {
	if version == payloadVersionJSON {
		return json.Unmarshal(data, out)
	}
	return codec.NewDecoderBytes(data, msgpackHandle).Decode(out)
}
