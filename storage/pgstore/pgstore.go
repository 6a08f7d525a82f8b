// Package pgstore is the PostgreSQL storage backend: several signoff
// replicas share one database and keep the guarantees the embedded bbolt
// backend gives one process (docs/architecture.md, invariants 3 and 4).
//
// # How it keeps the contract across processes
//
// Every Update runs in a PostgreSQL transaction that first locks the audit
// chain's head row (SELECT … FOR UPDATE); callers already waiting share one
// transaction and one commit, as with bbolt (storage/internal/groupcommit). Writers are therefore serialized
// across all replicas, as bbolt serializes them within one file: a
// transaction holding the lock sees every commit before it, so a
// compare-and-swap on a request's version, an idempotency check, a
// per-requester cap or a nonce check reads the truth and cannot be raced by
// another replica. A state change, its audit records and its outbox entries
// commit together or not at all. Reads (View) run in parallel with writers,
// on a REPEATABLE READ snapshot.
//
// PostgreSQL aborts a transaction on its first failed statement, while the
// contract keeps a transaction usable after a refusal (ErrNotFound,
// ErrAlreadyExists, ErrConflict). Every refusal is therefore found by a query
// that succeeds (ON CONFLICT DO NOTHING, rows affected, a lookup first),
// never by a failing statement. An Update that meets a serialization failure,
// a deadlock or a connection lost before commit runs again from the start
// (the contract allows an Update function to run more than once); a commit
// whose outcome is unknown is reported, never retried.
//
// # Schema
//
// The tables are created by numbered migrations embedded in the binary
// (migrations/*.sql), applied in order under an advisory lock when a store
// opens (or by `signoff migrate`), and recorded in signoff_schema. A database
// migrated by a newer signoff is refused. Everything lives in the
// connection's current schema (the DSN may set search_path), and the lock
// keys are derived from that schema's name, so one database can hold several
// independent installations.
//
// # Connecting
//
// Open tries the database once. With Options.Retry it does not give up on a
// database it cannot reach: it returns a store that keeps trying in the
// background with capped exponential backoff, answers Ping with why it is not
// ready (so /readyz reports it), and fails other calls at once with
// storage.ErrUnavailable until the database answers and is migrated.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/groupcommit"
	"github.com/signoff-dev/signoff/storage/internal/record"
	"github.com/signoff-dev/signoff/storage/internal/txfn"
)

// Defaults for Options fields left zero.
const (
	// DefaultTxTimeout bounds one Update or View once it holds what it
	// waited for.
	DefaultTxTimeout = 30 * time.Second
	// DefaultMaxConns is the pool's size unless the DSN sets
	// pool_max_conns.
	DefaultMaxConns = 16
	// DefaultLockConns caps the connections that hold named locks (Lock),
	// apart from the pool, so that lock holders waiting on the network
	// never take the connections commits need.
	DefaultLockConns = 16
	// DefaultMaxBatch is how many Update calls one transaction may group.
	DefaultMaxBatch = 64
	// DefaultMaxRetries is how many times an Update is run again after a
	// serialization failure, deadlock or connection lost before commit.
	DefaultMaxRetries = 5
	// maxBackoff caps the wait between two attempts to reach the database.
	maxBackoff = 30 * time.Second
)

var _ storage.Store = (*Store)(nil)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Retry makes Open return a store even when the database cannot be
	// reached yet; it keeps trying in the background (see the package
	// doc). Without it Open fails at once.
	Retry bool
	// ReadOnly opens an existing installation without migrating it: a
	// database at an older schema version is refused with a message
	// naming `signoff migrate`. Update fails.
	ReadOnly bool
	// TxTimeout bounds a transaction once it holds the write lock; zero
	// means DefaultTxTimeout.
	TxTimeout time.Duration
	// MaxRetries caps re-runs of an Update (see DefaultMaxRetries); zero
	// means the default, negative means none.
	MaxRetries int
	// MaxBatch caps how many Update calls share one transaction; zero or
	// negative means DefaultMaxBatch, 1 disables grouping.
	MaxBatch int
	// Logger receives connection trouble while retrying; nil discards it.
	Logger *slog.Logger
}

// Store is a storage.Store kept in a PostgreSQL database. It is safe for
// concurrent use by many goroutines and many processes. Create it with Open
// and release it with Close.
type Store struct {
	// pool serves transactions and reads; locks holds the connections of
	// named locks (Lock), which are held across network calls and must
	// never starve a commit of a connection; connCfg makes the listener's
	// own connection.
	pool    *pgxpool.Pool
	locks   *pgxpool.Pool
	connCfg *pgx.ConnConfig
	opts    Options
	// desc names the database in errors: host, port and database, never
	// the password.
	desc string

	// schema is the connection's current schema, read when the store
	// became ready; channel and lock keys derive from it.
	schema  string
	channel string

	ready    atomic.Bool
	readyErr atomic.Pointer[error]
	// stop ends the background connector; connectorDone is closed when it
	// has returned.
	stop          context.CancelFunc
	connectorDone chan struct{}

	// committer groups Update calls into transactions.
	committer *groupcommit.Committer[storage.Tx]

	// mu guards closing: calls hold it for reading while they register in
	// inflight, Close for writing while it marks the store closed.
	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the database named by dsn (a PostgreSQL URL or keyword
// string; pool settings such as pool_max_conns may ride along), migrates its
// schema to this build's version unless opts.ReadOnly, and returns the store.
// The DSN never appears in errors.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.TxTimeout <= 0 {
		opts.TxTimeout = DefaultTxTimeout
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w; see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING", dsnError(err))
	}
	desc := fmt.Sprintf("PostgreSQL %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default (the number of CPUs, at least 4) is small for a
		// server whose readers and committer run at once.
		cfg.MaxConns = max(cfg.MaxConns, DefaultMaxConns)
	}
	lockCfg := cfg.Copy()
	lockCfg.MaxConns = DefaultLockConns
	lockCfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", desc, err)
	}
	locks, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), lockCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", desc, err)
	}
	s := &Store{pool: pool, locks: locks, connCfg: cfg.ConnConfig.Copy(), opts: opts, desc: desc, connectorDone: make(chan struct{})}
	s.committer = groupcommit.New(desc, opts.MaxBatch, s.runTx)

	err = s.prepare(ctx)
	if err == nil {
		s.ready.Store(true)
		close(s.connectorDone)
		s.stop = func() {}
		return s, nil
	}
	if !opts.Retry || !retryable(err) || ctx.Err() != nil {
		s.committer.Close()
		pool.Close()
		locks.Close()
		return nil, err
	}
	s.setNotReady(err)
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	go s.connect(bg)
	return s, nil
}

// prepare checks that the database answers and brings its schema to this
// build's version (or, read-only, checks that it is there already).
func (s *Store) prepare(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return &unreachableError{desc: s.desc, err: err}
	}
	defer conn.Release()
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&s.schema); err != nil {
		return &unreachableError{desc: s.desc, err: err}
	}
	s.channel = channelName(s.schema)
	if s.opts.ReadOnly {
		return checkVersion(ctx, conn.Conn(), s.desc)
	}
	_, err = migrate(ctx, conn.Conn(), s.desc, migrations, len(migrations))
	return err
}

// connect retries prepare with capped exponential backoff until it succeeds
// or the store is closed.
func (s *Store) connect(ctx context.Context) {
	defer close(s.connectorDone)
	wait := 250 * time.Millisecond
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := s.prepare(ctx)
		if err == nil {
			s.ready.Store(true)
			s.opts.Logger.Info("database ready", "database", s.desc)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.setNotReady(err)
		s.opts.Logger.Warn("database not ready; retrying", "database", s.desc, "retry_in", wait.String(), "err", err)
		wait = min(2*wait, maxBackoff)
	}
}

func (s *Store) setNotReady(err error) {
	s.readyErr.Store(&err)
}

// unreachableError says the database could not be reached; it is the one
// start-up failure worth retrying.
type unreachableError struct {
	desc string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %v", e.desc, e.err)
}

func (e *unreachableError) Unwrap() []error { return []error{storage.ErrUnavailable, e.err} }

func retryable(err error) bool {
	var u *unreachableError
	return errors.As(err, &u)
}

// enter registers a call, failing if the store is closed or not ready yet.
// The caller must call s.inflight.Done when it returns nil.
func (s *Store) enter(op string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("%s %s: %w", op, s.desc, storage.ErrClosed)
	}
	if !s.ready.Load() {
		cause := errors.New("not connected yet")
		if p := s.readyErr.Load(); p != nil {
			cause = *p
		}
		return fmt.Errorf("%s %s: %w (%w)", op, s.desc, storage.ErrUnavailable, cause)
	}
	s.inflight.Add(1)
	return nil
}

// Update runs fn in a transaction that holds the write lock (see the
// package doc) and commits if fn returns nil. Like bbolt, the store groups
// the callers already waiting into one transaction and one commit
// (storage/internal/groupcommit), so fn may run more than once. The ctx is
// checked before fn is queued; once queued, the transaction runs to its end
// (bounded by Options.TxTimeout), so a caller never mistakes a landed change
// for a lost one. A panic in fn is returned as an error and nothing fn wrote
// is kept.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("update %s: %w", s.desc, err)
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("update %s: the store was opened read-only", s.desc)
	}
	if err := s.enter("update"); err != nil {
		return err
	}
	defer s.inflight.Done()
	return s.committer.Update(ctx, fn)
}

// runTx runs body in one transaction holding the write lock and commits it
// (groupcommit.RunFunc), running it again after a serialization failure, a
// deadlock or a connection lost before commit.
func (s *Store) runTx(body func(storage.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err, again := s.txOnce(body)
		if !again || attempt >= s.opts.MaxRetries {
			return err
		}
	}
}

// txOnce runs body once; again reports whether the failure is one that a
// fresh run may not meet (nothing was committed).
func (s *Store) txOnce(body func(storage.Tx) error) (err error, again bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.TxTimeout)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("update %s: begin: %w", s.desc, err), pgconn.SafeToRetry(err)
	}
	committed := false
	defer func() {
		if !committed {
			// A fresh context: a connection left in a transaction must
			// not go back to the pool.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = tx.Rollback(rctx)
			cancel()
		}
	}()
	// Take the write lock: every writer of every replica queues here.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM audit_head FOR UPDATE`); err != nil {
		return fmt.Errorf("update %s: lock: %w", s.desc, s.describe(err)), isTransient(err)
	}
	wt := &writeTx{readTx: readTx{ctx: ctx, q: tx, desc: s.desc}, channel: s.channel}
	bodyErr := body(wt)
	if wt.failed != nil {
		// A statement failed: PostgreSQL has aborted the transaction,
		// whatever the functions made of the error.
		return wt.failed, isTransient(wt.failed)
	}
	if bodyErr != nil {
		return bodyErr, false
	}
	if err := tx.Commit(ctx); err != nil {
		committed = true // nothing left to roll back
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("commit to %s: %w", s.desc, s.describe(err)), isTransient(err)
		}
		return fmt.Errorf("commit to %s: the outcome is unknown (the connection failed during commit): %w", s.desc, err), false
	}
	committed = true
	return nil, false
}

// isTransient reports a failure after which running the whole transaction
// again may succeed: a serialization failure, a deadlock, or a connection
// that failed before anything was sent.
func isTransient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return pgconn.SafeToRetry(err)
}

// describe adds advice to the errors an operator can act on.
func (s *Store) describe(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return fmt.Errorf("%w (a signoff table is missing: was the schema dropped, or does search_path point elsewhere? run `signoff migrate`)", err)
	}
	return err
}

// View runs fn in a read-only REPEATABLE READ transaction: fn sees one
// consistent snapshot while writers go on.
func (s *Store) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("view %s: %w", s.desc, err)
	}
	if err := s.enter("view"); err != nil {
		return err
	}
	defer s.inflight.Done()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("view %s: begin: %w", s.desc, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
	}()
	vctx, cancel := context.WithTimeout(ctx, s.opts.TxTimeout)
	defer cancel()
	rt := &readTx{ctx: vctx, q: tx, desc: s.desc}
	fnErr := txfn.Call(fn, storage.ReadTx(rt))
	if rt.failed != nil {
		return rt.failed
	}
	return fnErr
}

// AuditRecords calls fn with every audit record whose sequence number is at
// least from, in order, reading auditChunk records per query and calling fn
// outside any transaction. Records appended while it walks are included if
// the walk has not passed their place yet. ctx is checked between chunks.
func (s *Store) AuditRecords(ctx context.Context, from uint64, fn func(seq uint64, record []byte) error) error {
	if err := s.enter("read audit records of"); err != nil {
		return err
	}
	defer s.inflight.Done()
	return record.WalkAudit(from, func(from uint64) ([]record.Audit, error) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read audit records of %s: %w", s.desc, err)
		}
		rows, err := s.pool.Query(ctx, `SELECT seq, record FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2`, int64(min(from, 1<<63-1)), record.AuditChunk)
		if err != nil {
			return nil, fmt.Errorf("read audit records of %s from %d: %w", s.desc, from, s.describe(err))
		}
		chunk, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (record.Audit, error) {
			var seq int64
			var data []byte
			err := row.Scan(&seq, &data)
			return record.Audit{Seq: uint64(seq), Data: data}, err
		})
		if err != nil {
			return nil, fmt.Errorf("read audit records of %s from %d: %w", s.desc, from, s.describe(err))
		}
		return chunk, nil
	}, fn)
}

// Ping reports whether the database answers with this build's schema; while
// the background connector is still trying, it says why it is not ready.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ping %s: %w", s.desc, err)
	}
	if err := s.enter("ping"); err != nil {
		return err
	}
	defer s.inflight.Done()
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT version FROM signoff_schema`).Scan(&v); err != nil {
		return fmt.Errorf("ping %s: %w", s.desc, s.describe(err))
	}
	if v != len(migrations) {
		return fmt.Errorf("ping %s: schema version is %d, this signoff needs %d", s.desc, v, len(migrations))
	}
	return nil
}

// Close stops the background connector, waits for the calls in flight and
// closes the pool. Later calls return storage.ErrClosed errors; calling Close
// again returns the first Close's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stop()
		<-s.connectorDone
		s.inflight.Wait()
		s.committer.Close()
		s.pool.Close()
		s.locks.Close()
	})
	return s.closeErr
}

// String names the database the store is kept in (never the password).
func (s *Store) String() string { return s.desc }
