package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/orderkey"
	"github.com/signoff-dev/signoff/storage/internal/record"
)

// readTx implements storage.ReadTx over a bolt transaction. Everything it
// returns is decoded or copied while the transaction is open: bolt's memory
// is only valid until the transaction ends.
type readTx struct {
	tx *bbolt.Tx
}

// writeTx implements storage.Tx over a writable bolt transaction.
type writeTx struct {
	readTx
}

var (
	_ storage.ReadTx = (*readTx)(nil)
	_ storage.Tx     = (*writeTx)(nil)
)

func (t *readTx) bucket(name []byte) *bbolt.Bucket { return t.tx.Bucket(name) }

// Request returns the request with the given id.
func (t *readTx) Request(id string) (storage.Request, error) {
	r, found, err := t.getRequest(id)
	if err != nil {
		return storage.Request{}, err
	}
	if !found {
		return storage.Request{}, fmt.Errorf("request %q: %w", id, storage.ErrNotFound)
	}
	return r, nil
}

func (t *readTx) getRequest(id string) (storage.Request, bool, error) {
	if id == "" {
		return storage.Request{}, false, nil
	}
	v := t.bucket(bucketRequests).Get([]byte(id))
	if v == nil {
		return storage.Request{}, false, nil
	}
	v, _, err := unpack(v)
	if err != nil {
		return storage.Request{}, false, fmt.Errorf("read request %q: %w", id, err)
	}
	var r storage.Request
	if err := json.Unmarshal(v, &r); err != nil {
		return storage.Request{}, false, fmt.Errorf("decode request %q: %w (the store is damaged; restore it from a backup)", id, err)
	}
	return r, true, nil
}

// indexedRequest reads request id, which an index names; a missing request
// means the store is damaged, and what ("list requests") opens that error.
func (t *readTx) indexedRequest(id, what string) (storage.Request, error) {
	r, found, err := t.getRequest(id)
	if err != nil {
		return storage.Request{}, err
	}
	if !found {
		return storage.Request{}, fmt.Errorf("%s: index names missing request %q (the store is damaged)", what, id)
	}
	return r, nil
}

// RequestByIdempotencyScope returns the request created with scope.
func (t *readTx) RequestByIdempotencyScope(scope string) (storage.Request, error) {
	if scope != "" {
		if id := t.bucket(bucketByScope).Get([]byte(scope)); id != nil {
			r, found, err := t.getRequest(string(id))
			if err != nil {
				return storage.Request{}, err
			}
			if found {
				return r, nil
			}
			return storage.Request{}, fmt.Errorf("request for idempotency scope %q: index names missing request %q (the store is damaged)", scope, id)
		}
	}
	return storage.Request{}, fmt.Errorf("request for idempotency scope %q: %w", scope, storage.ErrNotFound)
}

// Requests lists the requests matching f, newest (latest CreatedAt) first;
// requests created at the same instant come in descending id order.
func (t *readTx) Requests(f storage.RequestFilter) ([]storage.Request, error) {
	var out []storage.Request
	c := t.bucket(bucketByTime).Cursor()
	for k, state := c.Last(); k != nil; k, state = c.Prev() {
		if len(f.States) > 0 && !slices.Contains(f.States, storage.State(state)) {
			continue
		}
		r, err := t.indexedRequest(string(k[orderkey.TimeLen:]), "list requests")
		if err != nil {
			return nil, err
		}
		if f.Action != "" && r.Action != f.Action {
			continue
		}
		out = append(out, r)
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out, nil
}

// PendingExpiring returns up to limit pending requests whose ExpiresAt is at
// or before at, soonest first (ties in id order). A limit of 0 or less means
// no cap.
func (t *readTx) PendingExpiring(at time.Time, limit int) ([]storage.Request, error) {
	var out []storage.Request
	bound := orderkey.Time(at)
	c := t.bucket(bucketByExpiry).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if bytes.Compare(k[:orderkey.TimeLen], bound) > 0 {
			break
		}
		r, err := t.indexedRequest(string(k[orderkey.TimeLen:]), "list expiring requests")
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// AuditHead returns the last audit record's sequence number and hash.
func (t *readTx) AuditHead() (uint64, string, error) {
	v := t.bucket(bucketMeta).Get(keyAuditHead)
	if v == nil {
		return 0, "", nil
	}
	if len(v) < 8 {
		return 0, "", errors.New("read audit head: malformed (the store is damaged; restore it from a backup)")
	}
	return be64(v), string(v[8:]), nil
}

// Outbox returns the outbox entry with the given id.
func (t *readTx) Outbox(id uint64) (storage.OutboxEntry, error) {
	v := t.bucket(bucketOutbox).Get(u64key(id))
	if v == nil {
		return storage.OutboxEntry{}, fmt.Errorf("outbox entry %d: %w", id, storage.ErrNotFound)
	}
	return decodeOutbox(id, v)
}

func decodeOutbox(id uint64, v []byte) (storage.OutboxEntry, error) {
	var e storage.OutboxEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return storage.OutboxEntry{}, fmt.Errorf("decode outbox entry %d: %w (the store is damaged; restore it from a backup)", id, err)
	}
	return e, nil
}

// DueOutbox returns up to limit entries whose NextAttempt and LeaseUntil are
// both at or before now, in id order. A limit of 0 or less means no cap.
func (t *readTx) DueOutbox(now time.Time, kindPrefix string, limit int) ([]storage.OutboxEntry, error) {
	var out []storage.OutboxEntry
	c := t.bucket(bucketOutbox).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e, err := decodeOutbox(be64(k), v)
		if err != nil {
			return nil, err
		}
		if e.NextAttempt.After(now) || e.LeaseUntil.After(now) || !strings.HasPrefix(e.Kind, kindPrefix) {
			continue
		}
		out = append(out, e)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// CreateRequest stores r as a new request with Version 1.
func (t *writeTx) CreateRequest(r storage.Request) error {
	if r.ID == "" {
		return errors.New("create request: empty id")
	}
	reqs := t.bucket(bucketRequests)
	if reqs.Get([]byte(r.ID)) != nil {
		return fmt.Errorf("create request %q: id %w", r.ID, storage.ErrAlreadyExists)
	}
	if r.IdempotencyScope != "" {
		if err := t.checkScopeFree(r.IdempotencyScope); err != nil {
			return fmt.Errorf("create request %q: %w", r.ID, err)
		}
	}
	r = record.Request(r)
	r.Version = 1
	if err := t.putIndexed(r); err != nil {
		return fmt.Errorf("create request %q: %w", r.ID, err)
	}
	return nil
}

// UpdateRequest replaces the stored request if its Version is r.Version,
// storing it with Version+1, and moves its index entries.
func (t *writeTx) UpdateRequest(r storage.Request) error {
	old, found, err := t.getRequest(r.ID)
	if err != nil {
		return fmt.Errorf("update request: %w", err)
	}
	if !found {
		return fmt.Errorf("update request %q: %w", r.ID, storage.ErrNotFound)
	}
	if old.Version != r.Version {
		return fmt.Errorf("update request %q: stored version is %d, not %d: %w", r.ID, old.Version, r.Version, storage.ErrConflict)
	}
	if r.IdempotencyScope != "" && r.IdempotencyScope != old.IdempotencyScope {
		if err := t.checkScopeFree(r.IdempotencyScope); err != nil {
			return fmt.Errorf("update request %q: %w", r.ID, err)
		}
	}
	r = record.Request(r)
	r.Version = old.Version + 1
	if err := t.removeIndexes(old); err != nil {
		return fmt.Errorf("update request %q: %w", r.ID, err)
	}
	if err := t.putIndexed(r); err != nil {
		return fmt.Errorf("update request %q: %w", r.ID, err)
	}
	return nil
}

// checkScopeFree fails with storage.ErrAlreadyExists if a stored request
// holds the idempotency scope.
func (t *writeTx) checkScopeFree(scope string) error {
	if other := t.bucket(bucketByScope).Get([]byte(scope)); other != nil {
		return fmt.Errorf("idempotency scope %q is taken by request %q: %w", scope, other, storage.ErrAlreadyExists)
	}
	return nil
}

// putIndexed writes r and its index entries.
func (t *writeTx) putIndexed(r storage.Request) error {
	if err := t.putRequest(r); err != nil {
		return err
	}
	return t.addIndexes(r)
}

func (t *writeTx) putRequest(r storage.Request) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return t.bucket(bucketRequests).Put([]byte(r.ID), pack(v))
}

func (t *writeTx) addIndexes(r storage.Request) error {
	if r.IdempotencyScope != "" {
		if err := t.bucket(bucketByScope).Put([]byte(r.IdempotencyScope), []byte(r.ID)); err != nil {
			return fmt.Errorf("index idempotency scope: %w", err)
		}
	}
	if err := t.bucket(bucketByTime).Put(indexKey(r.CreatedAt, r.ID), []byte(r.State)); err != nil {
		return fmt.Errorf("index creation time: %w", err)
	}
	if r.State == storage.StatePending {
		if err := t.bucket(bucketByExpiry).Put(indexKey(r.ExpiresAt, r.ID), nil); err != nil {
			return fmt.Errorf("index expiry: %w", err)
		}
		if err := t.bucket(bucketPendingBy).Put(pendingByKey(r), nil); err != nil {
			return fmt.Errorf("index pending by requester: %w", err)
		}
	}
	return nil
}

func (t *writeTx) removeIndexes(r storage.Request) error {
	if r.IdempotencyScope != "" {
		if err := t.bucket(bucketByScope).Delete([]byte(r.IdempotencyScope)); err != nil {
			return fmt.Errorf("unindex idempotency scope: %w", err)
		}
	}
	if err := t.bucket(bucketByTime).Delete(indexKey(r.CreatedAt, r.ID)); err != nil {
		return fmt.Errorf("unindex creation time: %w", err)
	}
	if err := t.bucket(bucketByExpiry).Delete(indexKey(r.ExpiresAt, r.ID)); err != nil {
		return fmt.Errorf("unindex expiry: %w", err)
	}
	if err := t.bucket(bucketPendingBy).Delete(pendingByKey(r)); err != nil {
		return fmt.Errorf("unindex pending by requester: %w", err)
	}
	return nil
}

// pendingByKey is r's key in bucketPendingBy: issuer and subject (as
// escaped parts), then creation time and id.
func pendingByKey(r storage.Request) []byte {
	k := requesterPrefix(r.Requester.Issuer, r.Requester.Subject)
	return append(k, indexKey(r.CreatedAt, r.ID)...)
}

func requesterPrefix(issuer, subject string) []byte {
	return appendPart(appendPart(nil, issuer), subject)
}

// PendingOf returns the requester's pending requests, oldest first.
func (t *readTx) PendingOf(issuer, subject string) ([]storage.Request, error) {
	b := t.bucket(bucketPendingBy)
	if b == nil {
		return nil, nil
	}
	prefix := requesterPrefix(issuer, subject)
	what := "list pending requests of " + subject
	var out []storage.Request
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		r, err := t.indexedRequest(string(k[len(prefix)+orderkey.TimeLen:]), what)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// indexPendingByRequester fills bucketPendingBy from the pending requests
// (bucketByExpiry lists them all).
func indexPendingByRequester(tx *bbolt.Tx) error {
	reqs, idx := tx.Bucket(bucketRequests), tx.Bucket(bucketPendingBy)
	c := tx.Bucket(bucketByExpiry).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		v := reqs.Get(k[orderkey.TimeLen:])
		if v == nil {
			continue
		}
		v, _, err := unpack(v)
		if err != nil {
			return fmt.Errorf("read request %q: %w", k[orderkey.TimeLen:], err)
		}
		var r storage.Request
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode request %q: %w", k[orderkey.TimeLen:], err)
		}
		if r.State == storage.StatePending {
			if err := idx.Put(pendingByKey(r), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// AppendAudit stores record under seq, which must follow the current head.
func (t *writeTx) AppendAudit(seq uint64, hash string, rec []byte) error {
	if err := record.CheckNextAudit(t, seq); err != nil {
		return err
	}
	// pack copies: bolt keeps a reference to the value until commit, and
	// the caller may reuse its buffer.
	if err := t.bucket(bucketAudit).Put(u64key(seq), pack(rec)); err != nil {
		return fmt.Errorf("append audit record %d: %w", seq, err)
	}
	headVal := append(u64key(seq), hash...)
	if err := t.bucket(bucketMeta).Put(keyAuditHead, headVal); err != nil {
		return fmt.Errorf("append audit record %d: write head: %w", seq, err)
	}
	return nil
}

// Enqueue stores e under the next outbox id and returns it with that id.
func (t *writeTx) Enqueue(e storage.OutboxEntry) (storage.OutboxEntry, error) {
	b := t.bucket(bucketOutbox)
	id, err := b.NextSequence()
	if err != nil {
		return storage.OutboxEntry{}, fmt.Errorf("enqueue %s for request %q: %w", e.Kind, e.RequestID, err)
	}
	e = record.Outbox(e)
	e.ID = id
	if err := t.putOutbox(e); err != nil {
		return storage.OutboxEntry{}, fmt.Errorf("enqueue %s for request %q: %w", e.Kind, e.RequestID, err)
	}
	return e, nil
}

// PutOutbox replaces the existing entry e.ID.
func (t *writeTx) PutOutbox(e storage.OutboxEntry) error {
	if t.bucket(bucketOutbox).Get(u64key(e.ID)) == nil {
		return fmt.Errorf("put outbox entry %d: %w", e.ID, storage.ErrNotFound)
	}
	if err := t.putOutbox(record.Outbox(e)); err != nil {
		return fmt.Errorf("put outbox entry %d: %w", e.ID, err)
	}
	return nil
}

func (t *writeTx) putOutbox(e storage.OutboxEntry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return t.bucket(bucketOutbox).Put(u64key(e.ID), v)
}

// DeleteOutbox removes entry id.
func (t *writeTx) DeleteOutbox(id uint64) error {
	b := t.bucket(bucketOutbox)
	k := u64key(id)
	if b.Get(k) == nil {
		return fmt.Errorf("delete outbox entry %d: %w", id, storage.ErrNotFound)
	}
	if err := b.Delete(k); err != nil {
		return fmt.Errorf("delete outbox entry %d: %w", id, err)
	}
	return nil
}

// indexKey is orderkey.Time(t) followed by id.
func indexKey(t time.Time, id string) []byte {
	return append(orderkey.Time(t), id...)
}

func u64key(n uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// clone copies bolt-owned bytes; unlike bytes.Clone it never returns nil, so
// an empty record reads back as empty.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// errMalformedExpiryKey reports an expiry index key too short to hold a
// time key and a record key.
var errMalformedExpiryKey = errors.New("malformed expiry index key (the store is damaged; restore it from a backup)")

// expiredKeys returns copies of the keys of the expiry index idx (time key
// ‖ record key) whose time is strictly before `before`, oldest first, and
// at most limit of them (all when limit is 0). They are collected before
// anything is deleted, since deleting under a live bolt cursor skips keys,
// and copied, since bolt's memory may move once the bucket changes.
func expiredKeys(idx *bbolt.Bucket, before time.Time, limit int) ([][]byte, error) {
	var keys [][]byte
	bound := orderkey.Time(before)
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) <= orderkey.TimeLen {
			return nil, errMalformedExpiryKey
		}
		if bytes.Compare(k[:orderkey.TimeLen], bound) >= 0 {
			break
		}
		keys = append(keys, clone(k))
		if limit > 0 && len(keys) >= limit {
			break
		}
	}
	return keys, nil
}
