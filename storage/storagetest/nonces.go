package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// recordNonce records n at now in its own transaction and returns whether
// it was new.
func recordNonce(t *testing.T, s storage.Store, n storage.Nonce, now time.Time) bool {
	t.Helper()
	return updateValue(t, s, func(tx storage.Tx) (bool, error) { return tx.RecordNonce(n, now) })
}

func deleteExpiredNonces(t *testing.T, s storage.Store, before time.Time, limit int) int {
	t.Helper()
	return updateValue(t, s, func(tx storage.Tx) (int, error) { return tx.DeleteExpiredNonces(before, limit) })
}

func testNonces(t *testing.T, s storage.Store) {
	n := storage.Nonce{Scope: "ssf https://idp.example.com", Value: "jti-1", ExpiresAt: base.Add(time.Hour)}
	if !recordNonce(t, s, n, base) {
		t.Fatal("RecordNonce of a new nonce = false, want true")
	}
	if recordNonce(t, s, n, base) {
		t.Error("RecordNonce of the same nonce again = true, want false (a replay)")
	}
	if recordNonce(t, s, n, base.Add(time.Hour-time.Nanosecond)) {
		t.Error("RecordNonce a nanosecond before the nonce expires = true, want false")
	}
	// Scope and value are both part of the identity, and neither can be
	// made from the other by moving bytes between them.
	for _, other := range []storage.Nonce{
		{Scope: n.Scope, Value: "jti-2"},
		{Scope: "ssf https://other.example.com", Value: n.Value},
		{Scope: n.Scope + "\x00", Value: n.Value},
		{Scope: "ssf https://idp.example.comj", Value: "ti-1"},
		{Scope: n.Scope, Value: n.Value + " "},
		{Scope: n.Scope, Value: "JTI-1"},
	} {
		other.ExpiresAt = n.ExpiresAt
		if !recordNonce(t, s, other, base) {
			t.Errorf("RecordNonce(%q, %q) = false, want true: it differs from (%q, %q)", other.Scope, other.Value, n.Scope, n.Value)
		}
	}
	// Expired, not yet swept: recorded again, with its new expiry.
	if !recordNonce(t, s, n, base.Add(time.Hour)) {
		t.Error("RecordNonce when the stored duplicate has expired = false, want true")
	}
	n.ExpiresAt = base.Add(3 * time.Hour)
	if !recordNonce(t, s, n, base.Add(2*time.Hour)) {
		t.Fatal("RecordNonce when the stored duplicate has expired = false, want true")
	}
	if recordNonce(t, s, n, base.Add(2*time.Hour)) {
		t.Error("RecordNonce right after re-recording = true, want false")
	}
	// The first recording's expiry must not sweep the second recording.
	deleteExpiredNonces(t, s, base.Add(2*time.Hour+time.Minute), 0)
	if recordNonce(t, s, n, base.Add(2*time.Hour+time.Minute)) {
		t.Error("a nonce re-recorded with a later expiry was swept at the earlier one")
	}

	update(t, s, func(tx storage.Tx) error {
		for _, bad := range []storage.Nonce{{Value: "v", ExpiresAt: farFuture}, {Scope: "s", ExpiresAt: farFuture}} {
			if fresh, err := tx.RecordNonce(bad, base); err == nil || fresh {
				t.Errorf("RecordNonce(%q, %q) = (%v, %v), want an error", bad.Scope, bad.Value, fresh, err)
			}
		}
		return nil
	})
}

func testNoncesInTx(t *testing.T, s storage.Store) {
	n := storage.Nonce{Scope: "s", Value: "tx", ExpiresAt: farFuture}
	update(t, s, func(tx storage.Tx) error {
		fresh, err := tx.RecordNonce(n, base)
		if err != nil || !fresh {
			return fmt.Errorf("first RecordNonce = (%v, %v), want (true, nil)", fresh, err)
		}
		fresh, err = tx.RecordNonce(n, base)
		if err != nil || fresh {
			t.Errorf("RecordNonce again in the same transaction = (%v, %v), want (false, nil)", fresh, err)
		}
		return nil
	})

	// A transaction that fails keeps no nonce: the change the nonce
	// guarded did not happen either, so a retry must be accepted.
	rolledBack := storage.Nonce{Scope: "s", Value: "rolled-back", ExpiresAt: farFuture}
	errBoom := errors.New("boom")
	err := s.Update(context.Background(), func(tx storage.Tx) error {
		if _, err := tx.RecordNonce(rolledBack, base); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want %v", err, errBoom)
	}
	if !recordNonce(t, s, rolledBack, base) {
		t.Error("a nonce recorded in a failed transaction was kept")
	}
}

func testDeleteExpiredNonces(t *testing.T, s storage.Store) {
	var ns []storage.Nonce
	for i := range 5 {
		ns = append(ns, storage.Nonce{Scope: "s", Value: fmt.Sprintf("n%d", i), ExpiresAt: base.Add(time.Duration(i) * time.Minute)})
	}
	for _, n := range ns {
		if !recordNonce(t, s, n, base.Add(-time.Hour)) {
			t.Fatalf("RecordNonce(%s) = false", n.Value)
		}
	}
	if n := deleteExpiredNonces(t, s, base.Add(-time.Hour), 0); n != 0 {
		t.Errorf("DeleteExpiredNonces before every expiry = %d, want 0", n)
	}
	// Strictly before: n0 expires at base and goes with base+1ns, not base.
	if n := deleteExpiredNonces(t, s, base, 0); n != 0 {
		t.Errorf("DeleteExpiredNonces(base) = %d, want 0 (a nonce expiring exactly then stays)", n)
	}
	if n := deleteExpiredNonces(t, s, base.Add(2*time.Minute+time.Nanosecond), 2); n != 2 {
		t.Errorf("DeleteExpiredNonces(limit 2) = %d, want 2", n)
	}
	if n := deleteExpiredNonces(t, s, base.Add(2*time.Minute+time.Nanosecond), 0); n != 1 {
		t.Errorf("DeleteExpiredNonces(no limit) = %d, want 1 (the third expired one)", n)
	}
	// The swept ones are new again; the others are still remembered.
	for i, n := range ns {
		swept := i <= 2
		if got := recordNonce(t, s, n, base.Add(-time.Hour)); got != swept {
			t.Errorf("RecordNonce(%s) after the sweep = %v, want %v", n.Value, got, swept)
		}
	}
	if n := deleteExpiredNonces(t, s, farFuture, 0); n != 5 {
		t.Errorf("DeleteExpiredNonces(far future) = %d, want 5", n)
	}
	if n := deleteExpiredNonces(t, s, farFuture, 0); n != 0 {
		t.Errorf("DeleteExpiredNonces on an empty store = %d, want 0", n)
	}
}

// testConcurrentNonce records one nonce from many goroutines at once:
// exactly one of them may see it as new.
func testConcurrentNonce(t *testing.T, s storage.Store) {
	const workers = 16
	n := storage.Nonce{Scope: "s", Value: "race", ExpiresAt: farFuture}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh int
	)
	for range workers {
		wg.Go(func() {
			var got bool
			err := s.Update(context.Background(), func(tx storage.Tx) error {
				var err error
				got, err = tx.RecordNonce(n, base)
				return err
			})
			if err != nil {
				t.Errorf("Update: %v", err)
				return
			}
			if got {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if fresh != 1 {
		t.Errorf("%d of %d concurrent RecordNonce calls saw the nonce as new, want exactly 1", fresh, workers)
	}
}

// reopenNonces are recorded before RunReopen reopens the store; the second
// has expired by base.
var reopenNonces = []storage.Nonce{
	{Scope: "ssf https://idp.example.com", Value: "reopen-jti-1", ExpiresAt: base.Add(time.Hour)},
	{Scope: "ssf https://idp.example.com", Value: "reopen-jti-2", ExpiresAt: base.Add(-time.Hour)},
}

func recordReopenNonces(tx storage.Tx) error {
	for _, n := range reopenNonces {
		if fresh, err := tx.RecordNonce(n, base.Add(-2*time.Hour)); err != nil || !fresh {
			return fmt.Errorf("RecordNonce(%s) = (%v, %v), want (true, nil)", n.Value, fresh, err)
		}
	}
	return nil
}

// checkReopenNonces checks, after a reopen, that a nonce recorded before is
// still refused and that the expiry index survived.
func checkReopenNonces(t *testing.T, tx storage.Tx) error {
	fresh, err := tx.RecordNonce(reopenNonces[0], base)
	if err != nil {
		return fmt.Errorf("RecordNonce after reopen: %w", err)
	}
	if fresh {
		t.Error("a nonce recorded before the reopen was accepted again after it (a replay across a restart)")
	}
	n, err := tx.DeleteExpiredNonces(base, 0)
	if err != nil {
		return fmt.Errorf("DeleteExpiredNonces after reopen: %w", err)
	}
	if n != 1 {
		t.Errorf("DeleteExpiredNonces(base) after reopen = %d, want 1", n)
	}
	return nil
}
