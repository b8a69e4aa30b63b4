package fsm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/fsm/state"
)

type applyFunc func(txn *state.Txn, index uint64, payload any) (any, error)

// ErrStopped is wrapped by every Apply result once the FSM has met an entry
// it cannot understand: applying anything after it would diverge.
var ErrStopped = errors.New("fsm stopped")

// FSM implements raft.FSM over the state store.
type FSM struct {
	logger  *slog.Logger
	state   atomic.Pointer[state.StateStore]
	onFatal func(error)

	fatalOnce sync.Once
	fatal     atomic.Pointer[error]
}

// Config configures an FSM.
type Config struct {
	Logger *slog.Logger
	// OnFatal is called once, from Apply, when an entry cannot be
	// understood. The server shuts itself down from it.
	OnFatal func(error)
}

// New returns an FSM with an empty state store.
func New(cfg Config) (*FSM, error) {
	s, err := state.NewStateStore()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FSM{logger: logger.With("component", "fsm"), onFatal: cfg.OnFatal}
	f.state.Store(s)
	return f, nil
}

// State returns the live state store. It changes after a restore, so
// callers re-read it rather than keeping it.
func (f *FSM) State() *state.StateStore { return f.state.Load() }

// Fatal returns the error that stopped the FSM, or nil.
func (f *FSM) Fatal() error {
	if p := f.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// Apply implements raft.FSM. It returns the command's result or an error.
func (f *FSM) Apply(l *raft.Log) any {
	if err := f.Fatal(); err != nil {
		return err
	}
	if l.Type != raft.LogCommand {
		return nil
	}
	res, err := f.applyEntry(l.Index, l.Data)
	if err != nil {
		return err
	}
	return res
}

func (f *FSM) applyEntry(index uint64, data []byte) (res any, err error) {
	defer func() {
		// A panic would crash every server on every replay of the entry;
		// stopping loudly on this one server is the lesser harm.
		if p := recover(); p != nil {
			res, err = nil, f.stop(index, fmt.Errorf("panic while applying entry: %v", p))
		}
	}()
	if len(data) < envelopeHeaderLen {
		return nil, f.stop(index, fmt.Errorf("entry of %d bytes is shorter than the envelope header", len(data)))
	}
	t, version := MessageType(data[0]), data[1]
	spec, known := commands[t&^IgnoreUnknownTypeFlag]
	if !known || version > spec.payloadVersion {
		if t&IgnoreUnknownTypeFlag != 0 {
			f.logger.Warn("skipping unknown command flagged safe to ignore", "type", uint8(t), "version", version, "index", index)
			return nil, nil
		}
		if !known {
			return nil, f.stop(index, fmt.Errorf("unknown command type %d (this server speaks FSM version %d)", uint8(t&^IgnoreUnknownTypeFlag), Version))
		}
		return nil, f.stop(index, fmt.Errorf("command %s has payload version %d; this server reads up to %d", spec.name, version, spec.payloadVersion))
	}
	payload := spec.newPayload()
	if err := decodePayload(version, data[envelopeHeaderLen:], payload); err != nil {
		return nil, f.stop(index, fmt.Errorf("decode %s: %w", spec.name, err))
	}
	txn := f.State().Txn(true)
	defer txn.Abort()
	res, err = spec.apply(txn, index, payload)
	if err != nil {
		// A rejected command is deterministic: every server rejects it.
		return nil, fmt.Errorf("apply %s: %w", spec.name, err)
	}
	txn.Commit()
	return res, nil
}

// stop records a fatal error: no later entry will be applied.
func (f *FSM) stop(index uint64, err error) error {
	err = fmt.Errorf("%w at raft index %d: %w", ErrStopped, index, err)
	f.fatalOnce.Do(func() {
		f.fatal.Store(&err)
		f.logger.Error("FSM cannot apply a log entry and has stopped; upgrade this server to a version that knows the command", "index", index, "error", err)
		if f.onFatal != nil {
			f.onFatal(err)
		}
	})
	return err
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.State().Snapshot()}, nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	restored, err := state.Restore(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	old := f.state.Swap(restored)
	old.Abandon()
	return nil
}

type fsmSnapshot struct {
	snap *state.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
