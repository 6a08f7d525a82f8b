package barebolt_test

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/internal/barebolt"
)

// TestCommitPutsOneValuePerKey: each Commit stores a value of the size
// given to Open under its big-endian key, and the file keeps them once
// closed.
func TestCommitPutsOneValuePerKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bare.db")
	f, err := barebolt.Open(path, 512)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Commit(0), f.Commit(1), f.Commit(2), f.Close()); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	bk := tx.Bucket([]byte("b"))
	if bk == nil {
		t.Fatal("no bucket b")
	}
	if n := bk.Stats().KeyN; n != 3 {
		t.Errorf("%d keys, want 3", n)
	}
	for i := range uint64(3) {
		if v := bk.Get(binary.BigEndian.AppendUint64(nil, i)); len(v) != 512 {
			t.Errorf("key %d: value of %d bytes, want 512", i, len(v))
		}
	}
}

// TestOpenFailsOnADirectory: a path bbolt cannot open is an error, not a
// File.
func TestOpenFailsOnADirectory(t *testing.T) {
	if f, err := barebolt.Open(t.TempDir(), 8); err == nil {
		f.Close()
		t.Fatal("Open of a directory succeeded")
	}
}
