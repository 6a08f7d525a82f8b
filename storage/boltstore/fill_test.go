package boltstore_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// Buckets whose keys arrive in order (audit sequence numbers, time-ordered
// request ids, time-first index keys) must fill their pages: with bbolt's
// default split point every page of such a bucket stays half empty and the
// file doubles. Audit records of about 600 bytes, as in use; requests of
// about 300.
func TestAppendedBucketsFillTheirPages(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	body := bytes.Repeat([]byte("x"), 560)
	// Twenty creates a commit, as group commit gathers them under load.
	for commit := range 150 {
		err := s.Update(ctx, func(tx storage.Tx) error {
			for i := commit * 20; i < commit*20+20; i++ {
				if err := appendOne(tx, i, at, body); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := boltstore.DB(s).View(func(tx *bbolt.Tx) error {
		for _, name := range []string{"audit", "requests", "requests_by_time", "requests_by_expiry"} {
			st := tx.Bucket([]byte(name)).Stats()
			fill := float64(st.LeafInuse) / float64(st.LeafAlloc)
			if fill < 0.8 {
				t.Errorf("bucket %s: leaf pages %.0f%% full after appending in key order, want at least 80%%", name, 100*fill)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// appendOne stores request i (ids and times in order) and its audit record.
func appendOne(tx storage.Tx, i int, at time.Time, body []byte) error {
	id := fmt.Sprintf("req_%08d", i)
	created := at.Add(time.Duration(i) * time.Millisecond)
	r := storage.Request{ID: id, State: storage.StatePending, Reason: string(body[:100]),
		CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	if err := tx.CreateRequest(r); err != nil {
		return err
	}
	seq, _, err := tx.AuditHead()
	if err != nil {
		return err
	}
	return tx.AppendAudit(seq+1, id, body)
}
