package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/orderkey"
	"github.com/signoff-dev/signoff/storage/internal/record"
)

// readTx implements storage.ReadTx over a PostgreSQL transaction.
type readTx struct {
	ctx  context.Context
	q    pgx.Tx
	desc string
	// failed is the first statement error: PostgreSQL has aborted the
	// transaction, so nothing after it can succeed and it must not commit.
	failed error
}

// writeTx implements storage.Tx over a transaction that holds the write
// lock.
type writeTx struct {
	readTx
	// channel is where request changes are announced (WatchRequests).
	channel string
}

var (
	_ storage.ReadTx = (*readTx)(nil)
	_ storage.Tx     = (*writeTx)(nil)
)

// fail records a statement error and returns it wrapped with what was being
// done.
func (t *readTx) fail(what string, err error) error {
	err = fmt.Errorf("%s in %s: %w", what, t.desc, err)
	if t.failed == nil {
		t.failed = err
	}
	return err
}

// exec runs a statement and returns the number of rows it touched.
func (t *readTx) exec(what, sql string, args ...any) (int64, error) {
	if t.failed != nil {
		return 0, t.failed
	}
	tag, err := t.q.Exec(t.ctx, sql, args...)
	if err != nil {
		return 0, t.fail(what, err)
	}
	return tag.RowsAffected(), nil
}

// execExisting runs a statement that must touch a row; when it touches
// none, it fails with storage.ErrNotFound, after what.
func (t *readTx) execExisting(what, sql string, args ...any) error {
	n, err := t.exec(what, sql, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	return nil
}

// queryBodies runs a query whose one column is a JSON body and decodes each.
func queryBodies[T any](t *readTx, what, sql string, args ...any) ([]T, error) {
	if t.failed != nil {
		return nil, t.failed
	}
	rows, err := t.q.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.fail(what, err)
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, t.fail(what, err)
	}
	out := make([]T, 0, len(bodies))
	for _, b := range bodies {
		v, err := decode[T](what, b)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// queryBody runs a query returning at most one JSON body; found is false
// when it returns none.
func queryBody[T any](t *readTx, what, sql string, args ...any) (v T, found bool, err error) {
	vs, err := queryBodies[T](t, what, sql, args...)
	if err != nil || len(vs) == 0 {
		return v, false, err
	}
	return vs[0], true, nil
}

func decode[T any](what string, b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s: decode: %w (the database is damaged; restore it from a backup)", what, err)
	}
	return v, nil
}

func encode(what string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", what, err)
	}
	return b, nil
}

// key turns a caller's string into a bytea parameter: keys are compared byte
// for byte and may hold any byte.
func key(s string) []byte { return []byte(s) }

// nullKey is key, but NULL for "" (an absent idempotency scope).
func nullKey(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// Request returns the request with the given id.
func (t *readTx) Request(id string) (storage.Request, error) {
	r, found, err := queryBody[storage.Request](t, "read request", `SELECT body FROM requests WHERE id = $1`, key(id))
	if err != nil {
		return storage.Request{}, err
	}
	if !found {
		return storage.Request{}, fmt.Errorf("request %q: %w", id, storage.ErrNotFound)
	}
	return r, nil
}

// RequestByIdempotencyScope returns the request created with scope.
func (t *readTx) RequestByIdempotencyScope(scope string) (storage.Request, error) {
	if scope != "" {
		r, found, err := queryBody[storage.Request](t, "read request by idempotency scope",
			`SELECT body FROM requests WHERE idempotency_scope = $1`, key(scope))
		if err != nil {
			return storage.Request{}, err
		}
		if found {
			return r, nil
		}
	}
	return storage.Request{}, fmt.Errorf("request for idempotency scope %q: %w", scope, storage.ErrNotFound)
}

// Requests lists the requests matching f, newest (latest CreatedAt) first;
// requests created at the same instant come in descending id order.
func (t *readTx) Requests(f storage.RequestFilter) ([]storage.Request, error) {
	states := make([]string, len(f.States))
	for i, s := range f.States {
		states[i] = string(s)
	}
	return queryBodies[storage.Request](t, "list requests", `
		SELECT body FROM requests
		WHERE (cardinality($1::text[]) = 0 OR state = ANY($1))
		  AND ($2::bytea IS NULL OR action = $2)
		ORDER BY created_key DESC, id DESC
		LIMIT $3`, states, nullKey(f.Action), limitArg(f.Limit))
}

// limitArg turns the contract's "<= 0 means no cap" into SQL's NULL (LIMIT
// ALL).
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return limit
}

// PendingExpiring returns up to limit pending requests whose ExpiresAt is at
// or before at, soonest first (ties in id order).
func (t *readTx) PendingExpiring(at time.Time, limit int) ([]storage.Request, error) {
	return queryBodies[storage.Request](t, "list expiring requests", `
		SELECT body FROM requests
		WHERE state = 'pending' AND expires_key <= $1
		ORDER BY expires_key, id
		LIMIT $2`, orderkey.Time(at), limitArg(limit))
}

// PendingOf returns the requester's pending requests, oldest first.
func (t *readTx) PendingOf(issuer, subject string) ([]storage.Request, error) {
	return queryBodies[storage.Request](t, "list pending requests of "+subject, `
		SELECT body FROM requests
		WHERE state = 'pending' AND requester_issuer = $1 AND requester_subject = $2
		ORDER BY created_key, id`, key(issuer), key(subject))
}

// AuditHead returns the last audit record's sequence number and hash.
func (t *readTx) AuditHead() (uint64, string, error) {
	if t.failed != nil {
		return 0, "", t.failed
	}
	var seq int64
	var hash []byte
	if err := t.q.QueryRow(t.ctx, `SELECT seq, hash FROM audit_head`).Scan(&seq, &hash); err != nil {
		return 0, "", t.fail("read audit head", err)
	}
	return uint64(seq), string(hash), nil
}

// outboxColumns are what an outbox query selects: the id is the column, the
// rest is the body.
const outboxColumns = `id, body`

func (t *readTx) outboxRows(what, sql string, args ...any) ([]storage.OutboxEntry, error) {
	if t.failed != nil {
		return nil, t.failed
	}
	rows, err := t.q.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.fail(what, err)
	}
	type row struct {
		ID   int64
		Body []byte
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return nil, t.fail(what, err)
	}
	out := make([]storage.OutboxEntry, 0, len(got))
	for _, r := range got {
		e, err := decode[storage.OutboxEntry](fmt.Sprintf("outbox entry %d", r.ID), r.Body)
		if err != nil {
			return nil, err
		}
		e.ID = uint64(r.ID)
		out = append(out, e)
	}
	return out, nil
}

// Outbox returns the outbox entry with the given id.
func (t *readTx) Outbox(id uint64) (storage.OutboxEntry, error) {
	es, err := t.outboxRows("read outbox entry", `SELECT `+outboxColumns+` FROM outbox WHERE id = $1`, idArg(id))
	if err != nil {
		return storage.OutboxEntry{}, err
	}
	if len(es) == 0 {
		return storage.OutboxEntry{}, fmt.Errorf("outbox entry %d: %w", id, storage.ErrNotFound)
	}
	return es[0], nil
}

// idArg maps an id beyond bigint's range to one no row has.
func idArg(id uint64) int64 {
	if id > 1<<63-1 {
		return -1
	}
	return int64(id)
}

// DueOutbox returns up to limit entries whose NextAttempt and LeaseUntil are
// both at or before now and whose kind starts with kindPrefix, in id order.
func (t *readTx) DueOutbox(now time.Time, kindPrefix string, limit int) ([]storage.OutboxEntry, error) {
	return t.dueOutbox(now, kindPrefix, limit, "")
}

// DueOutbox is readTx.DueOutbox, but inside an Update it locks the rows it
// returns (FOR UPDATE SKIP LOCKED): a worker claims an entry by writing a
// lease in the same transaction, and a row another transaction holds is
// passed over rather than waited for.
func (t *writeTx) DueOutbox(now time.Time, kindPrefix string, limit int) ([]storage.OutboxEntry, error) {
	return t.dueOutbox(now, kindPrefix, limit, " FOR UPDATE SKIP LOCKED")
}

func (t *readTx) dueOutbox(now time.Time, kindPrefix string, limit int, lock string) ([]storage.OutboxEntry, error) {
	return t.outboxRows("list due outbox entries", `
		SELECT `+outboxColumns+` FROM outbox
		WHERE due_key <= $1 AND substring(kind FROM 1 FOR length($2::bytea)) = $2
		ORDER BY id
		LIMIT $3`+lock, orderkey.Time(now), key(kindPrefix), limitArg(limit))
}

// CreateRequest stores r as a new request with Version 1.
func (t *writeTx) CreateRequest(r storage.Request) error {
	if r.ID == "" {
		return errors.New("create request: empty id")
	}
	r = record.Request(r)
	r.Version = 1
	body, err := encode(fmt.Sprintf("create request %q", r.ID), r)
	if err != nil {
		return err
	}
	n, err := t.exec(fmt.Sprintf("create request %q", r.ID), `
		INSERT INTO requests (id, idempotency_scope, state, action, requester_issuer, requester_subject,
		                      created_key, expires_key, version, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT DO NOTHING`,
		key(r.ID), nullKey(r.IdempotencyScope), string(r.State), key(r.Action),
		key(r.Requester.Issuer), key(r.Requester.Subject),
		orderkey.Time(r.CreatedAt), orderkey.Time(r.ExpiresAt), int64(r.Version), body)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	// Which key is taken? Both are answered by queries that succeed.
	if _, err := t.Request(r.ID); err == nil {
		return fmt.Errorf("create request %q: id %w", r.ID, storage.ErrAlreadyExists)
	}
	other, err := t.RequestByIdempotencyScope(r.IdempotencyScope)
	if err != nil {
		return fmt.Errorf("create request %q: refused by a unique key, but neither its id nor its idempotency scope is taken: %w", r.ID, err)
	}
	return fmt.Errorf("create request %q: idempotency scope %q is taken by request %q: %w",
		r.ID, r.IdempotencyScope, other.ID, storage.ErrAlreadyExists)
}

// UpdateRequest replaces the stored request if its Version is r.Version,
// storing it with Version+1, and notifies every replica's WatchRequests
// when the transaction commits.
func (t *writeTx) UpdateRequest(r storage.Request) error {
	old, err := t.Request(r.ID)
	if err != nil {
		return fmt.Errorf("update request: %w", err)
	}
	if old.Version != r.Version {
		return fmt.Errorf("update request %q: stored version is %d, not %d: %w", r.ID, old.Version, r.Version, storage.ErrConflict)
	}
	if r.IdempotencyScope != "" && r.IdempotencyScope != old.IdempotencyScope {
		if other, err := t.RequestByIdempotencyScope(r.IdempotencyScope); err == nil {
			return fmt.Errorf("update request %q: idempotency scope %q is taken by request %q: %w",
				r.ID, r.IdempotencyScope, other.ID, storage.ErrAlreadyExists)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("update request %q: %w", r.ID, err)
		}
	}
	r = record.Request(r)
	r.Version = old.Version + 1
	what := fmt.Sprintf("update request %q", r.ID)
	body, err := encode(what, r)
	if err != nil {
		return err
	}
	n, err := t.exec(what, `
		UPDATE requests SET idempotency_scope = $3, state = $4, action = $5, requester_issuer = $6,
		       requester_subject = $7, created_key = $8, expires_key = $9, version = $10, body = $11
		WHERE id = $1 AND version = $2`,
		key(r.ID), int64(old.Version), nullKey(r.IdempotencyScope), string(r.State), key(r.Action),
		key(r.Requester.Issuer), key(r.Requester.Subject),
		orderkey.Time(r.CreatedAt), orderkey.Time(r.ExpiresAt), int64(r.Version), body)
	if err != nil {
		return err
	}
	if n != 1 {
		// Impossible while the write lock is held; refuse rather than
		// pretend.
		return fmt.Errorf("%s: the stored version changed under the write lock: %w", what, storage.ErrConflict)
	}
	return t.notifyRequest(r.ID)
}

// AppendAudit stores record under seq, which must follow the current head,
// and moves the head.
func (t *writeTx) AppendAudit(seq uint64, hash string, rec []byte) error {
	if err := record.CheckNextAudit(t, seq); err != nil {
		return err
	}
	if rec == nil {
		rec = []byte{}
	}
	what := fmt.Sprintf("append audit record %d", seq)
	if _, err := t.exec(what, `INSERT INTO audit (seq, hash, record) VALUES ($1, $2, $3)`, int64(seq), key(hash), rec); err != nil {
		return err
	}
	_, err := t.exec(what, `UPDATE audit_head SET seq = $1, hash = $2`, int64(seq), key(hash))
	return err
}

// Enqueue stores e under the next outbox id and returns it with that id.
// Ids come from an identity column; since writers hold the write lock in
// turn, ids increase in commit order.
func (t *writeTx) Enqueue(e storage.OutboxEntry) (storage.OutboxEntry, error) {
	what := fmt.Sprintf("enqueue %s for request %q", e.Kind, e.RequestID)
	e = record.Outbox(e)
	e.ID = 0
	body, err := encode(what, e)
	if err != nil {
		return storage.OutboxEntry{}, err
	}
	if t.failed != nil {
		return storage.OutboxEntry{}, t.failed
	}
	var id int64
	err = t.q.QueryRow(t.ctx, `
		INSERT INTO outbox (request_id, kind, due_key, body) VALUES ($1, $2, $3, $4)
		RETURNING id`, key(e.RequestID), key(e.Kind), dueKey(e), body).Scan(&id)
	if err != nil {
		return storage.OutboxEntry{}, t.fail(what, err)
	}
	e.ID = uint64(id)
	return e, nil
}

// dueKey is when e is due: the later of its next attempt and its lease.
func dueKey(e storage.OutboxEntry) []byte {
	if e.LeaseUntil.After(e.NextAttempt) {
		return orderkey.Time(e.LeaseUntil)
	}
	return orderkey.Time(e.NextAttempt)
}

// PutOutbox replaces the existing entry e.ID.
func (t *writeTx) PutOutbox(e storage.OutboxEntry) error {
	what := fmt.Sprintf("put outbox entry %d", e.ID)
	e = record.Outbox(e)
	body, err := encode(what, withoutID(e))
	if err != nil {
		return err
	}
	return t.execExisting(what, `UPDATE outbox SET request_id = $2, kind = $3, due_key = $4, body = $5 WHERE id = $1`,
		idArg(e.ID), key(e.RequestID), key(e.Kind), dueKey(e), body)
}

func withoutID(e storage.OutboxEntry) storage.OutboxEntry {
	e.ID = 0
	return e
}

// DeleteOutbox removes entry id.
func (t *writeTx) DeleteOutbox(id uint64) error {
	what := fmt.Sprintf("delete outbox entry %d", id)
	return t.execExisting(what, `DELETE FROM outbox WHERE id = $1`, idArg(id))
}
