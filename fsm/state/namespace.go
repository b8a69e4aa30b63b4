package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/structs"
)

// NamespaceByName returns the namespace or nil.
func (s *StateStore) NamespaceByName(ws memdb.WatchSet, name string) (*structs.Namespace, error) {
	txn := s.db.Txn(false)
	watch, raw, err := txn.FirstWatch(TableNamespaces, "id", name)
	if err != nil {
		return nil, fmt.Errorf("namespace lookup: %w", err)
	}
	ws.Add(watch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Namespace), nil
}

// Namespaces lists every namespace, sorted by name.
func (s *StateStore) Namespaces(ws memdb.WatchSet) ([]*structs.Namespace, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(TableNamespaces, "id")
	if err != nil {
		return nil, fmt.Errorf("namespace list: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*structs.Namespace
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Namespace))
	}
	return out, nil
}

// UpsertNamespaces creates or updates namespaces.
func (t *Txn) UpsertNamespaces(index uint64, namespaces []*structs.Namespace) error {
	for _, ns := range namespaces {
		if ns == nil {
			return fmt.Errorf("%w: null namespace", ErrInvalidRequest)
		}
		ns = ns.Copy()
		raw, err := t.First(TableNamespaces, "id", ns.Name)
		if err != nil {
			return fmt.Errorf("namespace lookup: %w", err)
		}
		if raw != nil {
			ns.CreateIndex = raw.(*structs.Namespace).CreateIndex
		} else {
			ns.CreateIndex = index
		}
		ns.ModifyIndex = index
		if err := t.Insert(TableNamespaces, ns); err != nil {
			return fmt.Errorf("namespace insert: %w", err)
		}
	}
	return t.bumpIndex(TableNamespaces, index)
}

// DeleteNamespaces removes namespaces that hold no jobs. The default
// namespace can never be deleted.
func (t *Txn) DeleteNamespaces(index uint64, names []string) error {
	for _, name := range names {
		if name == structs.DefaultNamespace {
			return fmt.Errorf("%w: the default namespace cannot be deleted", ErrInvalidRequest)
		}
		raw, err := t.First(TableNamespaces, "id", name)
		if err != nil {
			return fmt.Errorf("namespace lookup: %w", err)
		}
		if raw == nil {
			return fmt.Errorf("namespace %q: %w", name, ErrNotFound)
		}
		it, err := t.Get(TableJobs, "id_prefix", name, "")
		if err != nil {
			return fmt.Errorf("namespace jobs: %w", err)
		}
		if it.Next() != nil {
			return fmt.Errorf("%w: namespace %q still has jobs", ErrConflict, name)
		}
		if err := t.Delete(TableNamespaces, raw); err != nil {
			return fmt.Errorf("namespace delete: %w", err)
		}
	}
	return t.bumpIndex(TableNamespaces, index)
}
