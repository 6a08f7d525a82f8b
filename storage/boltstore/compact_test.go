package boltstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// oldStyleFile writes a store the way files grew before pages were filled:
// request ids in random order, and outbox entries enqueued and delivered
// (deleted), leaving free pages behind. It returns the file's path, the
// last outbox id and the audit head.
func oldStyleFile(t *testing.T) (string, uint64, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signoff.db")
	s := open(t, path, boltstore.Options{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	body := bytes.Repeat([]byte("a"), 500)
	var lastOutbox uint64
	for commit := range 100 {
		err := s.Update(ctx, func(tx storage.Tx) error {
			for i := range 20 {
				id := fmt.Sprintf("req_%016x", rng.Uint64())
				if err := tx.CreateRequest(storage.Request{ID: id, State: storage.StatePending, Reason: string(body[:200])}); err != nil {
					return err
				}
				seq, _, err := tx.AuditHead()
				if err != nil {
					return err
				}
				if err := tx.AppendAudit(seq+1, fmt.Sprintf("h%d", seq+1), body); err != nil {
					return err
				}
				e, err := tx.Enqueue(storage.OutboxEntry{RequestID: id, Kind: "notify.slack", Payload: body})
				if err != nil {
					return err
				}
				lastOutbox = e.ID
				if (commit*20+i)%10 != 0 {
					if err := tx.DeleteOutbox(e.ID); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, head, err := auditHead(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, lastOutbox, head
}

func auditHead(s *boltstore.Store) (uint64, string, error) {
	var seq uint64
	var hash string
	err := s.View(context.Background(), func(tx storage.ReadTx) error {
		var err error
		seq, hash, err = tx.AuditHead()
		return err
	})
	return seq, hash, err
}

// Compact shrinks a file and keeps every key, value and bucket sequence: the
// store reads the same afterwards, and the outbox keeps counting from
// where it was (a reused id would confuse a delivery in flight).
func TestCompactShrinksAndKeepsEverything(t *testing.T) {
	path, lastOutbox, head := oldStyleFile(t)
	original := filepath.Join(t.TempDir(), "original.db")
	copyFile(t, path, original)

	res, err := boltstore.Compact(context.Background(), path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.After >= res.Before || res.Before == 0 {
		t.Fatalf("compact: %d bytes before, %d after; want smaller", res.Before, res.After)
	}
	if res.Keys < 2000*3 {
		t.Fatalf("compact compared %d keys, want at least the 6,000 written", res.Keys)
	}
	if fi, _ := os.Stat(path); fi.Size() != res.After {
		t.Fatalf("file is %d bytes, result says %d", fi.Size(), res.After)
	}

	a, b := openBolt(t, original), openBolt(t, path)
	if n, err := boltstore.SameFiles(a, b); err != nil || n != res.Keys {
		t.Fatalf("compacted file differs from the original after %d keys: %v", n, err)
	}
	a.Close()
	b.Close()

	s := openTemp2(t, path)
	if _, got, err := auditHead(s); err != nil || got != head {
		t.Fatalf("audit head after compact: %q, %v; want %q", got, err, head)
	}
	err = s.Update(context.Background(), func(tx storage.Tx) error {
		e, err := tx.Enqueue(storage.OutboxEntry{RequestID: "req_after", Kind: "notify.slack"})
		if err == nil && e.ID != lastOutbox+1 {
			err = fmt.Errorf("first outbox id after compact is %d, want %d", e.ID, lastOutbox+1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, path)
}

// A file a server holds is refused, and stays exactly as it was.
func TestCompactRefusesAFileInUse(t *testing.T) {
	path, _, _ := oldStyleFile(t)
	s := open(t, path, boltstore.Options{})
	defer s.Close()
	before := readFile(t, path)
	_, err := boltstore.Compact(context.Background(), path, boltstore.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("compact of a file in use: %v, want storage.ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "locked by another signoff process") {
		t.Fatalf("error does not say what to do: %v", err)
	}
	checkUntouched(t, path, before, "a refused compact")
}

// checkUntouched fails unless the file at path still holds before and no
// partial copy is left next to it.
func checkUntouched(t *testing.T, path string, before []byte, what string) {
	t.Helper()
	if !bytes.Equal(readFile(t, path), before) {
		t.Fatalf("%s changed the file", what)
	}
	checkNoLeftovers(t, path)
}

func checkNoLeftovers(t *testing.T, path string) {
	t.Helper()
	if leftovers, _ := filepath.Glob(path + ".compact-*"); len(leftovers) != 0 {
		t.Fatalf("compact left %v behind", leftovers)
	}
}

// A compact stopped before the copy is checked leaves the original in
// place and no partial copy.
func TestCompactCancelledLeavesOriginal(t *testing.T) {
	path, _, _ := oldStyleFile(t)
	before := readFile(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := boltstore.Compact(ctx, path, boltstore.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("compact with a cancelled context: %v", err)
	}
	checkUntouched(t, path, before, "a cancelled compact")
}

// The key-by-key check Compact runs on its copy refuses a copy that lost a
// key, changed a value, or lost a bucket's sequence.
func TestCompactCheckFindsDifferences(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		spoil      func(tx *bbolt.Tx) error
	}{
		{"value", "value of key", func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("k2"), []byte("other")) }},
		{"missing key", "keys differ", func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Delete([]byte("k2")) }},
		{"extra key", "keys differ", func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("k9"), []byte("v")) }},
		{"sequence", "sequence", func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).SetSequence(1) }},
		{"extra bucket", "keys differ", func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("z")); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fill := func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucket([]byte("b"))
				if err != nil {
					return err
				}
				for _, k := range []string{"k1", "k2", "k3"} {
					if err := b.Put([]byte(k), []byte("v-"+k)); err != nil {
						return err
					}
				}
				return b.SetSequence(7)
			}
			a, b := openBolt(t, filepath.Join(t.TempDir(), "a.db")), openBolt(t, filepath.Join(t.TempDir(), "b.db"))
			defer a.Close()
			defer b.Close()
			if err := a.Update(fill); err != nil {
				t.Fatal(err)
			}
			if err := b.Update(fill); err != nil {
				t.Fatal(err)
			}
			if _, err := boltstore.SameFiles(a, b); err != nil {
				t.Fatalf("identical files compare as different: %v", err)
			}
			if err := b.Update(tc.spoil); err != nil {
				t.Fatal(err)
			}
			_, err := boltstore.SameFiles(a, b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("spoiled copy: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func openBolt(t *testing.T, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func openTemp2(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s := open(t, path, boltstore.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, readFile(t, from), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A file from schema version 1 holds plain values; compact packs them
// (and the file is marked version 2, so an older signoff refuses it), and
// every record reads back exactly as before.
func TestCompactPacksSchemaOneValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signoff.db")
	s := open(t, path, boltstore.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	record := `{"action":"deploy","actor":{"issuer":"https://token.actions.githubusercontent.com","subject":"repo:acme/api:ref:refs/heads/main"},"hash":"h1","prev":"p","request_id":"req_old","seq":1,"time":"2026-03-01T12:00:00Z","type":"request.created"}`
	setSchema(t, path, 1, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("audit")).Put(binary.BigEndian.AppendUint64(nil, 1), []byte(record))
	})
	if _, err := boltstore.Compact(context.Background(), path, boltstore.Options{}); err != nil {
		t.Fatal(err)
	}
	if v := schemaOf(t, path); v != 2 {
		t.Fatalf("schema version after compacting a version 1 file: %d, want 2", v)
	}
	db := openBolt(t, path)
	var stored []byte
	_ = db.View(func(tx *bbolt.Tx) error {
		stored = bytes.Clone(tx.Bucket([]byte("audit")).Get(binary.BigEndian.AppendUint64(nil, 1)))
		return nil
	})
	db.Close()
	if len(stored) == 0 || stored[0] != 0x01 || len(stored) >= len(record) {
		t.Fatalf("compacted audit record is stored as %q, want it packed", stored)
	}
	st := openTemp2(t, path)
	var got string
	if err := st.AuditRecords(context.Background(), 1, func(_ uint64, rec []byte) error { got = string(rec); return nil }); err != nil || got != record {
		t.Fatalf("audit record after compact reads %q, %v; want %q", got, err, record)
	}
}
