package boltstore

// One-time values (nonces).
//
// A nonce is stored under part(scope) ‖ part(value), with its expiry (a time
// key) as the value, and indexed by expiry in nonces_by_expiry, so that
// DeleteExpiredNonces reads only the nonces it removes. RecordNonce and
// DeleteExpiredNonces keep the index in step in the same transaction.
//
// Writes are serialized by bolt, so of two transactions that record the
// same nonce, the one that commits second sees the first's record and
// reports a replay: with one database file, a nonce is new exactly once.

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/orderkey"
)

// RecordNonce implements storage.Tx.
func (t *writeTx) RecordNonce(n storage.Nonce, now time.Time) (bool, error) {
	if n.Scope == "" || n.Value == "" {
		return false, errors.New("record nonce: scope and value must not be empty")
	}
	b, err := t.writeBucket(bucketNonces)
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	idx, err := t.writeBucket(bucketNoncesByExpiry)
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	k := nonceKey(n.Scope, n.Value)
	if v := b.Get(k); v != nil {
		old, err := orderkey.ParseTime(v)
		if err != nil {
			return false, fmt.Errorf("record nonce in scope %q: %w", n.Scope, err)
		}
		if old.After(now) {
			return false, nil
		}
		// Expired but not yet swept: it is replaced below.
		if err := idx.Delete(append(clone(v), k...)); err != nil {
			return false, fmt.Errorf("record nonce in scope %q: unindex expired duplicate: %w", n.Scope, err)
		}
	}
	exp := orderkey.Time(n.ExpiresAt.UTC())
	if err := b.Put(k, exp); err != nil {
		return false, fmt.Errorf("record nonce in scope %q: %w", n.Scope, err)
	}
	if err := idx.Put(append(exp, k...), nil); err != nil {
		return false, fmt.Errorf("record nonce in scope %q: index expiry: %w", n.Scope, err)
	}
	return true, nil
}

// DeleteExpiredNonces implements storage.Tx.
func (t *writeTx) DeleteExpiredNonces(before time.Time, limit int) (int, error) {
	b, err := t.writeBucket(bucketNonces)
	if err != nil {
		return 0, fmt.Errorf("delete expired nonces: %w", err)
	}
	idx, err := t.writeBucket(bucketNoncesByExpiry)
	if err != nil {
		return 0, fmt.Errorf("delete expired nonces: %w", err)
	}
	keys, err := expiredKeys(idx, before, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired nonces: %w", err)
	}
	for _, k := range keys {
		nk := k[orderkey.TimeLen:]
		// The nonce itself goes only if it still has this expiry: the
		// index entry of a replaced nonce is removed when it is replaced,
		// so this guards against a damaged index alone.
		if v := b.Get(nk); v != nil && bytes.Equal(v, k[:orderkey.TimeLen]) {
			if err := b.Delete(nk); err != nil {
				return 0, fmt.Errorf("delete expired nonces: %w", err)
			}
		}
		if err := idx.Delete(k); err != nil {
			return 0, fmt.Errorf("delete expired nonces: %w", err)
		}
	}
	return len(keys), nil
}

// nonceKey is the key of a nonce: its scope and value, each encoded by
// appendPart, so that no (scope, value) pair can collide with another.
func nonceKey(scope, value string) []byte {
	return appendPart(appendPart(make([]byte, 0, len(scope)+len(value)+4), scope), value)
}
