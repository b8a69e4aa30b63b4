// Package fsm is berth's Raft state machine: typed, versioned command
// envelopes applied deterministically to the state store, and snapshots of
// that store. Apply decodes, runs one transaction, and returns; it never
// reads the clock, draws random numbers or starts goroutines.
package fsm

import (
	"bytes"
	"fmt"
)

// MessageType identifies a command. The list is append-only: a number is
// never reused or renumbered, because old log entries keep it forever.
type MessageType uint8

// IgnoreUnknownTypeFlag marks a command that a server which does not know
// it may skip safely. Without it an unknown command stops the FSM.
const IgnoreUnknownTypeFlag MessageType = 0x80

// Command types. Append only.
const (
	JobRegisterType       MessageType = 1
	JobDeregisterType     MessageType = 2
	EvalUpsertType        MessageType = 3
	EvalDeleteType        MessageType = 4
	AllocUpsertType       MessageType = 5
	NodeRegisterType      MessageType = 6
	NodeDeregisterType    MessageType = 7
	NodeUpdateStatusType  MessageType = 8
	NamespaceUpsertType   MessageType = 9
	NamespaceDeleteType   MessageType = 10
	ApplyPlanResultsType  MessageType = 11
	AllocClientUpdateType MessageType = 12
	SchedulerConfigType   MessageType = 13
	// NodeUpdateEligibilityType payload: NodeUpdateEligibilityCommand.
	NodeUpdateEligibilityType MessageType = 14
	// NodeUpdateDrainType payload: NodeUpdateDrainCommand (since 2).
	NodeUpdateDrainType MessageType = 15
	// AllocUpdateDesiredTransitionType payload:
	// AllocUpdateDesiredTransitionCommand (since 2).
	AllocUpdateDesiredTransitionType MessageType = 16
)

// Version is the FSM protocol version this build speaks: the highest
// `since` of any command it knows. Servers advertise it over gossip, and the
// leader emits a command only when every server's version is at least that
// command's `since`.
//
// Version 2 added node drains and allocation desired transitions.
const Version = 2

// envelopeHeaderLen is the type byte plus the payload version byte.
const envelopeHeaderLen = 2

// commandSpec describes how one command type is decoded and applied.
type commandSpec struct {
	name string
	// since is the FSM protocol version that introduced the command.
	since int
	// payloadVersion is the newest payload shape this build decodes.
	payloadVersion uint8
	// newPayload returns an empty payload to decode into.
	newPayload func() any
	// apply runs the payload in txn at index.
	apply applyFunc
}

var commands = map[MessageType]*commandSpec{}

func register(t MessageType, spec *commandSpec) {
	if _, dup := commands[t]; dup {
		panic(fmt.Sprintf("fsm: command type %d registered twice", t))
	}
	if spec.since > Version {
		panic(fmt.Sprintf("fsm: command %s since %d is newer than Version %d", spec.name, spec.since, Version))
	}
	commands[t] = spec
}

// Since returns the FSM version that introduced t, or false if this build
// does not know t.
func Since(t MessageType) (int, bool) {
	spec, ok := commands[t&^IgnoreUnknownTypeFlag]
	if !ok {
		return 0, false
	}
	return spec.since, true
}

// String names the command type.
func (t MessageType) String() string {
	if spec, ok := commands[t&^IgnoreUnknownTypeFlag]; ok {
		return spec.name
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// Encode wraps a payload in an envelope for raft.Apply.
func Encode(t MessageType, payload any) ([]byte, error) {
	spec, ok := commands[t&^IgnoreUnknownTypeFlag]
	if !ok {
		return nil, fmt.Errorf("encode: unknown command type %d", t)
	}
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	buf.WriteByte(spec.payloadVersion)
	if err := encodePayload(&buf, payload); err != nil {
		return nil, fmt.Errorf("encode %s: %w", spec.name, err)
	}
	// Raft keeps recent entries in memory; a grown buffer can be twice the
	// entry's size, so hand it an exact copy.
	return append(make([]byte, 0, buf.Len()), buf.Bytes()...), nil
}
