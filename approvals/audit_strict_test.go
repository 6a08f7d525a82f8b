package approvals_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
)

// The log a Service writes with a signing key: strict verification refuses
// it while records follow the last periodic checkpoint, and accepts it once
// Close has appended the closing checkpoint; the checkpoints published along
// the way anchor it.
func TestAuditStrictAndAnchorsAfterClose(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	h := newHarness(t, approvals.Options{SigningKey: priv, CheckpointEvery: 4})

	verify := func(opts audit.VerifyOptions) (audit.Summary, error) {
		t.Helper()
		v := audit.NewVerifier(opts)
		if err := h.store.AuditRecords(context.Background(), 1, func(_ uint64, line []byte) error { return v.Add(line) }); err != nil && !errors.As(err, new(*audit.ChainError)) {
			t.Fatal(err)
		}
		return v.Finish()
	}
	anchorsOf := func(lines [][]byte) []audit.Anchor {
		t.Helper()
		var file bytes.Buffer
		for _, l := range lines {
			if bytes.Contains(l, []byte(`"type":"checkpoint"`)) {
				file.Write(l)
				file.WriteByte('\n')
			}
		}
		a, err := audit.ReadAnchors(&file, pub)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	// Records 1-4, a checkpoint at 5, then records 6 and 7.
	for range 6 {
		h.create("restart", nil)
	}
	published := anchorsOf(testenv.AuditLines(t, h.store))
	if len(published) != 1 || published[0].Seq != 5 {
		t.Fatalf("anchors %+v", published)
	}
	_, err := verify(audit.VerifyOptions{PublicKey: pub, Strict: true})
	var ce *audit.ChainError
	if !errors.Is(err, audit.ErrUnsignedTail) || !errors.As(err, &ce) || ce.Seq != 6 {
		t.Fatalf("strict on a running log: %v", err)
	}
	if _, err := verify(audit.VerifyOptions{PublicKey: pub, Anchors: published}); err != nil {
		t.Fatalf("anchors on a running log: %v", err)
	}

	if err := h.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := testenv.AuditLines(t, h.store)
	last, err := audit.ParseRecord(lines[len(lines)-1])
	if err != nil || last.Type != audit.TypeCheckpoint || last.Seq != 8 {
		t.Fatalf("last record %+v %v", last, err)
	}
	sum, err := verify(audit.VerifyOptions{PublicKey: pub, Strict: true, Anchors: anchorsOf(lines)})
	if err != nil || sum.LastCheckpoint != 8 || sum.Anchors != 2 {
		t.Fatalf("strict and anchors after Close: %+v %v", sum, err)
	}

	// Work after a restart makes the tail unsigned again; the anchors
	// published before still hold.
	h.reopen()
	h.create("restart", nil)
	if _, err := verify(audit.VerifyOptions{PublicKey: pub, Strict: true}); !errors.Is(err, audit.ErrUnsignedTail) {
		t.Fatalf("strict after more work: %v", err)
	}
	if _, err := verify(audit.VerifyOptions{PublicKey: pub, Anchors: anchorsOf(lines)}); err != nil {
		t.Fatal(err)
	}
}
