// Package testenv holds helpers shared by the test suites of several
// packages: a real bbolt store in a temporary directory, a discard logger,
// the audit log read back as verified, parsed records (or verified as it
// grows, AuditTail), and an attestation signer with a fresh key.
//
// It is for tests only; no production code may import it.
package testenv

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// DBPath returns a fresh database path in a temporary directory removed
// when the test ends.
func DBPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "signoff.db")
}

// OpenStore opens a new bbolt store in a temporary directory. It is closed
// when the test ends.
func OpenStore(t testing.TB) *boltstore.Store {
	t.Helper()
	return OpenStoreAt(t, DBPath(t))
}

// OpenStoreAt opens the bbolt store at path (creating it if needed) and
// closes it when the test ends. Closing it earlier, to reopen the same
// file, is fine: Close is idempotent.
func OpenStoreAt(t testing.TB, path string) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// DiscardLogger returns a logger that drops everything.
func DiscardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// AttestSigner returns an attestation signer for issuer with a new ES256
// (ECDSA P-256) key.
func AttestSigner(t testing.TB, issuer string) *attest.Signer {
	t.Helper()
	key, err := attest.GenerateKey(false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := attest.NewSigner(attest.SignerOptions{Issuer: issuer, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// AuditLines returns every audit record as stored, in order, and fails the
// test if the hash chain does not verify.
func AuditLines(t testing.TB, st storage.Store) [][]byte {
	t.Helper()
	var out [][]byte
	v := audit.NewVerifier(audit.VerifyOptions{})
	err := st.AuditRecords(context.Background(), 1, func(_ uint64, line []byte) error {
		out = append(out, append([]byte(nil), line...))
		return v.Add(line)
	})
	if err != nil {
		t.Fatalf("audit records: %v", err)
	}
	if _, err := v.Finish(); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	return out
}

// VerifyLines verifies audit lines, in order, with opts: it fails the test
// if a line is refused, and returns what the verifier's Finish returns (a
// missing checkpoint or anchor is only found there).
func VerifyLines(t testing.TB, lines [][]byte, opts audit.VerifyOptions) (audit.Summary, error) {
	t.Helper()
	v := audit.NewVerifier(opts)
	for _, l := range lines {
		if err := v.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	return v.Finish()
}

// AuditRecords returns the audit log parsed with audit.ParseRecord, and
// fails the test if the hash chain does not verify.
func AuditRecords(t testing.TB, st storage.Store) []audit.Record {
	t.Helper()
	lines := AuditLines(t, st)
	out := make([]audit.Record, 0, len(lines))
	for _, line := range lines {
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatalf("audit records: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// AuditTypes returns the records' types, in order.
func AuditTypes(recs []audit.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Type
	}
	return out
}

// DueOutbox returns every outbox entry whose kind starts with kindPrefix
// ("" for all), however far in the future it is due.
func DueOutbox(t testing.TB, st storage.Store, kindPrefix string) []storage.OutboxEntry {
	t.Helper()
	var out []storage.OutboxEntry
	err := st.View(context.Background(), func(tx storage.ReadTx) error {
		var err error
		out, err = tx.DueOutbox(time.Unix(1<<40, 0), kindPrefix, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
