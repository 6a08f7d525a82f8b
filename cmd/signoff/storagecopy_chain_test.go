package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// skipAudit is a destination store that silently drops the audit record
// with seq skip: a backend (or a fault) losing a record on the way.
type skipAudit struct {
	storage.Store
	skip uint64
}

func (s skipAudit) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error { return fn(skipAuditTx{tx, s.skip}) })
}

type skipAuditTx struct {
	storage.Tx
	skip uint64
}

func (t skipAuditTx) AppendAudit(seq uint64, hash string, rec []byte) error {
	if seq == t.skip {
		return nil
	}
	return t.Tx.AppendAudit(seq, hash, rec)
}

// A copy whose audit chain does not end where the source's does (here the
// destination lost the last record) is reported as failed, naming both
// ends, although every record it holds verifies.
func TestStorageCopyRefusesAChainEndingElsewhere(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := boltstore.Open(filepath.Join(dir, "src.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var prevSeq uint64
	prevHash := ""
	err = src.Update(ctx, func(tx storage.Tx) error {
		for i := range 3 {
			rec := audit.Record{Time: audit.FormatTime(time.Date(2026, 12, 7, 12, 0, i, 0, time.UTC)), Type: audit.TypeCallbackRejected, Data: map[string]any{"n": i}}
			sealed, line, err := audit.Seal(rec, prevSeq, prevHash)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(sealed.Seq, sealed.Hash, line); err != nil {
				return err
			}
			prevSeq, prevHash = sealed.Seq, sealed.Hash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srcSum, err := verifyStore(ctx, src)
	if err != nil || srcSum.LastSeq != 3 {
		t.Fatalf("source: %+v %v", srcSum, err)
	}

	dst, err := boltstore.Open(filepath.Join(dir, "dst.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	_, err = copyStore(ctx, src, srcSum, skipAudit{Store: dst, skip: 3}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ends at seq 2") || !strings.Contains(err.Error(), "the source's at seq 3") {
		t.Fatalf("copy losing the last record: %v", err)
	}

	// The same copy without the loss succeeds.
	whole, err := boltstore.Open(filepath.Join(dir, "whole.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if sum, err := copyStore(ctx, src, srcSum, whole, io.Discard); err != nil || sum.audit.LastSeq != 3 {
		t.Fatalf("whole copy: %+v %v", sum, err)
	}
}
