package state

import (
	"context"
	"errors"
	"fmt"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// Sentinel errors; callers test them with errors.Is.
var (
	ErrNotFound       = errors.New("not found")
	ErrConflict       = errors.New("conflict")
	ErrInvalidRequest = errors.New("invalid request")
)

// StateStore is the cluster state. Writes come only from the FSM, through
// Txn(true); reads may use the store directly or a Snapshot.
type StateStore struct {
	db *memdb.MemDB

	// abandonCh closes when the store is replaced by a snapshot restore,
	// so blocking queries on the old store wake up and re-read.
	abandonMu sync.Mutex
	abandonCh chan struct{}
}

// NewStateStore returns an empty store holding only the default namespace.
func NewStateStore() (*StateStore, error) {
	db, err := memdb.NewMemDB(mustSchema())
	if err != nil {
		return nil, fmt.Errorf("create state store: %w", err)
	}
	s := &StateStore{db: db, abandonCh: make(chan struct{})}
	txn := db.Txn(true)
	defer txn.Abort()
	if err := txn.Insert(TableNamespaces, &structs.Namespace{
		Name:        structs.DefaultNamespace,
		Description: "Default shared namespace",
	}); err != nil {
		return nil, fmt.Errorf("create default namespace: %w", err)
	}
	txn.Commit()
	return s, nil
}

// Snapshot is a consistent, read-only, point-in-time view of the store.
type Snapshot struct {
	StateStore
}

// Snapshot returns a point-in-time view; later writes don't change it.
func (s *StateStore) Snapshot() *Snapshot {
	s.abandonMu.Lock()
	ch := s.abandonCh
	s.abandonMu.Unlock()
	return &Snapshot{StateStore{db: s.db.Snapshot(), abandonCh: ch}}
}

// AbandonCh closes when the store is replaced by a restore.
func (s *StateStore) AbandonCh() <-chan struct{} {
	s.abandonMu.Lock()
	defer s.abandonMu.Unlock()
	return s.abandonCh
}

// Abandon wakes every blocking query on this store; the FSM calls it after
// swapping in a restored store.
func (s *StateStore) Abandon() {
	s.abandonMu.Lock()
	defer s.abandonMu.Unlock()
	select {
	case <-s.abandonCh:
	default:
		close(s.abandonCh)
	}
}

// Txn starts a memdb transaction. Only the FSM and restore write.
func (s *StateStore) Txn(write bool) *Txn {
	return &Txn{Txn: s.db.Txn(write)}
}

// Txn wraps a memdb transaction with berth's table-index bookkeeping.
type Txn struct {
	*memdb.Txn
}

// bumpIndex records that table changed at index.
func (t *Txn) bumpIndex(table string, index uint64) error {
	if err := t.Insert(tableIndex, &IndexEntry{Key: table, Value: index}); err != nil {
		return fmt.Errorf("update index of %s: %w", table, err)
	}
	return nil
}

// Index returns the Raft index that last changed table, adding a watch.
func (s *StateStore) Index(ws memdb.WatchSet, table string) uint64 {
	txn := s.db.Txn(false)
	watch, raw, err := txn.FirstWatch(tableIndex, "id", table)
	if err != nil {
		return 0
	}
	ws.Add(watch)
	if raw == nil {
		return 0
	}
	return raw.(*IndexEntry).Value
}

// LatestIndex is the highest index of any table.
func (s *StateStore) LatestIndex() uint64 {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	var max uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if v := raw.(*IndexEntry).Value; v > max {
			max = v
		}
	}
	return max
}

// QueryFunc reads from the store, adding what it read to ws, and returns
// the index the result is current as of.
type QueryFunc func(ws memdb.WatchSet, s *StateStore) (uint64, error)

// Blocking runs fn until its index passes minIndex or ctx ends. current
// returns the live store (it changes after a restore). It always runs fn at
// least once and returns its last index and error.
func Blocking(ctx context.Context, current func() *StateStore, minIndex uint64, fn QueryFunc) (uint64, error) {
	for {
		s := current()
		ws := memdb.NewWatchSet()
		ws.Add(s.AbandonCh())
		index, err := fn(ws, s)
		if err != nil || minIndex == 0 || index > minIndex {
			return index, err
		}
		if ws.WatchCtx(ctx) != nil {
			return index, nil
		}
	}
}
