package boltstore_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// setSchema writes schema version v into a closed store's file, and runs
// edit (if any) in the same transaction.
func setSchema(t *testing.T, path string, v uint64, edit func(*bbolt.Tx) error) {
	t.Helper()
	db := openBolt(t, path)
	defer db.Close()
	err := db.Update(func(tx *bbolt.Tx) error {
		if edit != nil {
			if err := edit(tx); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func schemaOf(t *testing.T, path string) uint64 {
	t.Helper()
	db := openBolt(t, path)
	defer db.Close()
	var v uint64
	_ = db.View(func(tx *bbolt.Tx) error {
		v = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		return nil
	})
	return v
}

// A file of schema version 1 holds plain JSON values: this version reads
// them as they are (read-only too), and a read-write open raises the file
// to version 2, so that a signoff knowing only version 1 refuses it rather
// than misreading a packed value. A version it does not know is refused.
func TestSchemaOneReadsAndUpgrades(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signoff.db")
	s := open(t, path, boltstore.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	const plainRequest = `{"id":"req_old","action":"deploy","reason":"from a version 1 file","state":"pending","version":1}`
	const plainRecord = `{"action":"deploy","hash":"h1","seq":1,"type":"request.created"}`
	setSchema(t, path, 1, func(tx *bbolt.Tx) error {
		if err := tx.Bucket([]byte("requests")).Put([]byte("req_old"), []byte(plainRequest)); err != nil {
			return err
		}
		return tx.Bucket([]byte("audit")).Put(binary.BigEndian.AppendUint64(nil, 1), []byte(plainRecord))
	})

	check := func(s *boltstore.Store) {
		t.Helper()
		err := s.View(context.Background(), func(tx storage.ReadTx) error {
			r, err := tx.Request("req_old")
			if err == nil && r.Reason != "from a version 1 file" {
				t.Errorf("request from a version 1 file reads as %+v", r)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = s.AuditRecords(context.Background(), 1, func(_ uint64, rec []byte) error { got = string(rec); return nil })
		if err != nil || got != plainRecord {
			t.Fatalf("audit record from a version 1 file reads as %q, %v", got, err)
		}
	}
	ro := open(t, path, boltstore.Options{ReadOnly: true})
	check(ro)
	ro.Close()
	if v := schemaOf(t, path); v != 1 {
		t.Fatalf("a read-only open changed the schema version to %d", v)
	}
	rw := open(t, path, boltstore.Options{})
	check(rw)
	rw.Close()
	if v := schemaOf(t, path); v != 2 {
		t.Fatalf("schema version after a read-write open of a version 1 file: %d, want 2", v)
	}

	setSchema(t, path, 3, nil)
	for _, opts := range []boltstore.Options{{}, {ReadOnly: true}} {
		_, err := boltstore.Open(path, opts)
		if err == nil || !strings.Contains(err.Error(), "schema version 3") || !strings.Contains(err.Error(), "use a newer signoff") {
			t.Errorf("open (read-only %v) of a schema version 3 file: %v, want a refusal naming the version", opts.ReadOnly, err)
		}
	}
}
