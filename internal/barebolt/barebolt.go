// Package barebolt is the floor the disk sets under the bbolt store: a
// bare bbolt file that takes one small put per transaction, each commit
// fsynced, from a single writer. approvals' BenchmarkBareBoltPutFsync,
// storage/boltstore's BenchmarkBarePutFsync and the load driver's bare
// commits (internal/loadrig) all time this one loop, so their baselines
// measure the same thing.
package barebolt

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucket is the one bucket the file holds.
var bucket = []byte("b")

// File is a bbolt file written one put per commit.
type File struct {
	db    *bolt.DB
	value []byte
}

// Open opens (creating it if need be) the bbolt file at path, whose every
// Commit puts a value of valueSize bytes. Its errors are bbolt's, for the
// caller to put in context.
func Open(path string, valueSize int) (*File, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	return &File{db: db, value: make([]byte, valueSize)}, nil
}

// Commit runs one durable transaction (bbolt's default: fsynced before it
// returns) that creates the bucket if it is missing and puts the value
// under i, an 8-byte big-endian key. Its errors are bbolt's.
func (f *File) Commit(i uint64) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], i)
		return bk.Put(k[:], f.value)
	})
}

// Close closes the file.
func (f *File) Close() error {
	return f.db.Close()
}
