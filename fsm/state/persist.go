package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/structs"
)

// SnapshotFormat names berth's state snapshot stream; SnapshotVersion goes
// up (with a migration in Restore) whenever the stream's shape changes.
const (
	SnapshotFormat  = "berth-state"
	SnapshotVersion = 1
)

type snapshotHeader struct {
	Format  string
	Version int
	Index   uint64
}

type snapshotRecord struct {
	Table string          `json:"T"`
	Value json.RawMessage `json:"V,omitempty"`
	Index *IndexEntry     `json:"I,omitempty"`
	// Records is set only on the trailer: how many records precede it.
	Records *uint64 `json:"N,omitempty"`
}

// trailerTable names the last record of a stream. Without it a stream cut
// at a line boundary would restore as a smaller, valid-looking state.
const trailerTable = "$end"

// Persist writes every table of the snapshot to w as a header line, one
// JSON record per object and a trailer record counting them.
func (s *Snapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Format: SnapshotFormat, Version: SnapshotVersion, Index: s.LatestIndex()}); err != nil {
		return fmt.Errorf("write snapshot header: %w", err)
	}
	txn := s.db.Txn(false)
	var n uint64
	for _, table := range append([]string{tableIndex}, Tables...) {
		it, err := txn.Get(table, "id")
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", table, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			rec := snapshotRecord{Table: table}
			if ie, ok := raw.(*IndexEntry); ok {
				rec.Index = ie
			} else if rec.Value, err = json.Marshal(raw); err != nil {
				return fmt.Errorf("snapshot %s: %w", table, err)
			}
			if err := enc.Encode(&rec); err != nil {
				return fmt.Errorf("snapshot %s: %w", table, err)
			}
			n++
		}
	}
	if err := enc.Encode(&snapshotRecord{Table: trailerTable, Records: &n}); err != nil {
		return fmt.Errorf("write snapshot trailer: %w", err)
	}
	return bw.Flush()
}

// Restore reads a stream written by Persist into a new store. The stream
// must be complete: a truncated or unknown stream is an error and nothing
// of it is returned.
func Restore(r io.Reader) (*StateStore, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	var hdr snapshotHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	if hdr.Format != SnapshotFormat {
		return nil, fmt.Errorf("snapshot format %q is not %q", hdr.Format, SnapshotFormat)
	}
	if hdr.Version < 1 || hdr.Version > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is not supported (this server reads up to %d)", hdr.Version, SnapshotVersion)
	}
	s, err := NewStateStore()
	if err != nil {
		return nil, err
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	rc := newRestoreCompactor(txn)
	var n uint64
	for {
		var rec snapshotRecord
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("snapshot truncated after %d records: no trailer", n)
		}
		if err != nil {
			return nil, fmt.Errorf("read snapshot record: %w", err)
		}
		if rec.Table == trailerTable {
			if rec.Records == nil || *rec.Records != n {
				return nil, fmt.Errorf("snapshot trailer does not match the %d records read", n)
			}
			if err := dec.Decode(&rec); !errors.Is(err, io.EOF) {
				return nil, errors.New("snapshot has data after its trailer")
			}
			break
		}
		n++
		obj, err := decodeRecord(&rec)
		if err != nil {
			return nil, err
		}
		if a, ok := obj.(*structs.Allocation); ok {
			rc.compact(a)
		}
		if err := txn.Insert(rec.Table, obj); err != nil {
			return nil, fmt.Errorf("restore %s: %w", rec.Table, err)
		}
	}
	txn.Commit()
	return s, nil
}

func decodeRecord(rec *snapshotRecord) (any, error) {
	var obj any
	switch rec.Table {
	case tableIndex:
		if rec.Index == nil {
			return nil, errors.New("restore: index record without value")
		}
		return rec.Index, nil
	case TableNamespaces:
		obj = new(structs.Namespace)
	case TableNodes:
		obj = new(structs.Node)
	case TableJobs:
		obj = new(structs.Job)
	case TableEvals:
		obj = new(structs.Evaluation)
	case TableAllocs:
		obj = new(structs.Allocation)
	case TableSchedulerConfig:
		obj = new(structs.SchedulerConfiguration)
	default:
		return nil, fmt.Errorf("restore: unknown table %q", rec.Table)
	}
	if err := json.Unmarshal(rec.Value, obj); err != nil {
		return nil, fmt.Errorf("restore %s: %w", rec.Table, err)
	}
	return obj, nil
}
