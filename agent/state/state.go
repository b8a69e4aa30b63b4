// Package state persists what an agent runs, so that a restarted agent can
// re-attach to its tasks: every allocation as received from the servers
// and, per task, the driver that runs it, the driver's handle and the
// task's state. It is a bbolt file (DataDir/agent.db).
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/plugins/driver"
	"github.com/berth-dev/berth/plugins/network"
	"github.com/berth-dev/berth/structs"
)

// Layout: bucket "allocs" holds one bucket per allocation ID, holding key
// "alloc" (the allocation JSON), optionally key "network" (its
// network.AllocNetwork JSON) and a bucket "tasks" of task name → Task
// JSON. Deleting an allocation drops its bucket and everything in it.
var (
	bucketAllocs = []byte("allocs")
	bucketTasks  = []byte("tasks")
	keyAlloc     = []byte("alloc")
	keyNetwork   = []byte("network")
	bucketMeta   = []byte("meta")
	keyVersion   = []byte("version")
)

// schemaVersion is the layout version written in the meta bucket; a file
// with a newer one is refused rather than misread.
const schemaVersion = 1

// ErrNewerSchema is returned by Open for a file written by a newer agent.
var ErrNewerSchema = errors.New("agent state written by a newer version")

// Task is what is persisted of one task.
type Task struct {
	// Driver is the driver name the task runs under.
	Driver string
	// Handle is the driver's handle; nil before the task first started.
	Handle *driver.TaskHandle `json:",omitempty"`
	// State is the task's state as last reported.
	State *structs.TaskState `json:",omitempty"`
}

// DB is the agent's state file. Its methods are safe for concurrent use.
type DB struct {
	db *bolt.DB
}

// Open opens (creating if needed) the state file at path.
func Open(path string) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open agent state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketAllocs); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyVersion); v != nil {
			var n int
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if n > schemaVersion {
				return fmt.Errorf("%w: schema %d > %d", ErrNewerSchema, n, schemaVersion)
			}
		}
		return meta.Put(keyVersion, []byte(fmt.Sprint(schemaVersion)))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init agent state %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the file.
func (d *DB) Close() error { return d.db.Close() }

// PutAlloc stores (or replaces) an allocation.
func (d *DB) PutAlloc(a *structs.Allocation) error {
	buf, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alloc %s: %w", a.ID, err)
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketAllocs).CreateBucketIfNotExists([]byte(a.ID))
		if err != nil {
			return fmt.Errorf("alloc bucket %s: %w", a.ID, err)
		}
		return b.Put(keyAlloc, buf)
	})
}

// PutTask stores a task of an allocation already stored.
func (d *DB) PutTask(allocID, task string, t *Task) error {
	buf, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode task %s/%s: %w", allocID, task, err)
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAllocs).Bucket([]byte(allocID))
		if ab == nil {
			// the alloc was destroyed while the task still reported; drop
			return nil
		}
		tb, err := ab.CreateBucketIfNotExists(bucketTasks)
		if err != nil {
			return fmt.Errorf("tasks bucket %s: %w", allocID, err)
		}
		return tb.Put([]byte(task), buf)
	})
}

// PutNetwork stores the network prepared for an allocation already
// stored, so a restarted agent hands its tasks the same namespace without
// asking the network plugin again.
func (d *DB) PutNetwork(allocID string, n *network.AllocNetwork) error {
	buf, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode network of %s: %w", allocID, err)
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAllocs).Bucket([]byte(allocID))
		if ab == nil {
			return nil // destroyed meanwhile
		}
		return ab.Put(keyNetwork, buf)
	})
}

// DeleteAlloc removes an allocation and its tasks.
func (d *DB) DeleteAlloc(allocID string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketAllocs).DeleteBucket([]byte(allocID))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// Alloc is an allocation with its tasks, as loaded.
type Alloc struct {
	Alloc *structs.Allocation
	Tasks map[string]*Task
	// Network is the allocation's network (nil: none was prepared).
	Network *network.AllocNetwork
}

// Allocs loads every stored allocation. Entries that do not decode are
// reported in the joined error and skipped, so one bad record does not
// stop the agent from recovering the others.
func (d *DB) Allocs() ([]*Alloc, error) {
	var out []*Alloc
	var errs []error
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAllocs).ForEachBucket(func(id []byte) error {
			ab := tx.Bucket(bucketAllocs).Bucket(id)
			var a structs.Allocation
			if err := json.Unmarshal(ab.Get(keyAlloc), &a); err != nil {
				errs = append(errs, fmt.Errorf("decode alloc %s: %w", id, err))
				return nil
			}
			rec := &Alloc{Alloc: &a, Tasks: map[string]*Task{}}
			if v := ab.Get(keyNetwork); v != nil {
				var n network.AllocNetwork
				if err := json.Unmarshal(v, &n); err != nil {
					errs = append(errs, fmt.Errorf("decode network of %s: %w", id, err))
				} else {
					rec.Network = &n
				}
			}
			if tb := ab.Bucket(bucketTasks); tb != nil {
				_ = tb.ForEach(func(k, v []byte) error {
					var t Task
					if err := json.Unmarshal(v, &t); err != nil {
						errs = append(errs, fmt.Errorf("decode task %s/%s: %w", id, k, err))
						return nil
					}
					rec.Tasks[string(k)] = &t
					return nil
				})
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load agent state: %w", err)
	}
	return out, errors.Join(errs...)
}
