package testenv

import (
	"context"
	"fmt"
	"testing"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

// AuditTail verifies an audit log as it grows, for tests (fuzz targets
// above all) that check it after every step without reading it whole each
// time.
type AuditTail struct {
	store storage.Store
	v     *audit.Verifier
	seq   uint64
}

// NewAuditTail returns a tail of st's audit log that has checked nothing
// yet.
func NewAuditTail(st storage.Store) *AuditTail {
	return &AuditTail{store: st, v: audit.NewVerifier(audit.VerifyOptions{})}
}

// Check verifies the records written since the last check: each a line a
// verifier accepts (at most audit.MaxLineBytes), chained to the ones
// before. It fails tb otherwise.
func (a *AuditTail) Check(tb testing.TB) {
	tb.Helper()
	err := a.store.AuditRecords(context.Background(), a.seq+1, func(seq uint64, line []byte) error {
		if len(line) > audit.MaxLineBytes {
			return fmt.Errorf("audit record %d is %d bytes, longer than audit.MaxLineBytes", seq, len(line))
		}
		if err := a.v.Add(line); err != nil {
			return err
		}
		a.seq = seq
		return nil
	})
	if err != nil {
		tb.Fatalf("the audit log no longer verifies: %v", err)
	}
}

// Seq is the sequence number of the last record Check took.
func (a *AuditTail) Seq() uint64 { return a.seq }
