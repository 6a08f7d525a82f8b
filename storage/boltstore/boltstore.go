// Package boltstore is the embedded storage backend: one bbolt file holds
// requests, the audit chain, the outbox and the identity links.
//
// # Layout
//
// The file has these buckets (all keys big-endian so that byte order is
// numeric order):
//
//	requests                id → Request as JSON, packed (pack.go)
//	requests_by_scope       idempotency scope → id
//	requests_by_expiry      time(ExpiresAt) ‖ id → nil; exactly the pending requests
//	requests_by_time        time(CreatedAt) ‖ id → state; for listing newest first
//	audit                   seq (8 bytes) → record, packed: it reads back exactly as given
//	outbox                  id (8 bytes) → OutboxEntry as JSON; ids from NextSequence
//	meta                    "schema" → schema version, "audit_head" → seq (8 bytes) ‖ hash
//	links                   part(platform) ‖ part(workspace) ‖ part(user) → IdentityLink as JSON
//	link_attempts           id → LinkAttempt as JSON
//	link_attempts_by_expiry time(ExpiresAt) ‖ id → nil; exactly the attempts
//	conversations           part(platform) ‖ part(id) → Conversation as JSON
//	nonces                  part(scope) ‖ part(value) → time(ExpiresAt)
//	nonces_by_expiry        time(ExpiresAt) ‖ part(scope) ‖ part(value) → nil; exactly the nonces
//
// A time key (package orderkey) is 12 bytes: the Unix seconds with the sign bit flipped (so that
// times before 1970 sort first) followed by the nanoseconds, which orders and
// round-trips every time.Time exactly.
//
// A part is a string with every 0x00 byte written as 0x00 0xff, followed by
// the terminator 0x00 0x01. The terminator never occurs inside an encoded
// part, so a link key splits into (platform, workspace, user) in exactly one
// way, and byte order of the keys is the order of the string triples (see
// linkKey).
//
// The link, conversation and nonce buckets were added to the layout later
// than the others.
// Adding buckets leaves the schema version alone (a signoff that does not know
// them ignores them): a read-write Open creates them when missing, and a
// read-only Open of a file that lacks them reads them as empty.
//
// # Group commit
//
// Update does not open a bolt transaction per caller: package
// storage/internal/groupcommit groups the callers already waiting (up to
// Options.MaxBatch) into one bolt transaction, one fsync for the whole group,
// and runs each function of a failed group again on its own. This is why an
// Update function may run more than once (see package storage).
//
// An Update or View function must not call Update, View or Close on the same
// Store, and must not keep the Tx after it returns.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/groupcommit"
	"github.com/signoff-dev/signoff/storage/internal/record"
)

// Defaults for Options fields left zero.
const (
	// DefaultLockTimeout is how long Open waits for another process to
	// release the file lock.
	DefaultLockTimeout = time.Second
	// DefaultMaxBatch is how many Update calls one commit may group.
	DefaultMaxBatch = 128
)

// schemaVersion is written into the meta bucket; Open refuses a file written
// by a newer layout. Version 2 packs the values of the requests and audit
// buckets (pack.go); version 1 files hold only plain values, which version
// 2 reads as they are, so a read-write Open raises a version 1 file to 2
// (a signoff that knows only version 1 then refuses it, rather than
// misreading a packed value).
const schemaVersion = 2

var _ storage.Store = (*Store)(nil)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// process before failing with storage.ErrLocked. Zero or negative means
	// DefaultLockTimeout; Open never waits forever.
	LockTimeout time.Duration
	// MaxBatch caps how many Update calls share one commit. Zero or negative
	// means DefaultMaxBatch; 1 disables group commit.
	MaxBatch int
	// ReadOnly opens the file with a shared lock for reading (several
	// read-only openers may coexist, but not with a writer). Update fails,
	// and the file must already exist and hold a signoff store.
	ReadOnly bool
}

// Store is a storage.Store kept in one bbolt file. It is safe for concurrent
// use. Create it with Open and release it with Close.
type Store struct {
	db       *bbolt.DB
	path     string
	readOnly bool

	// committer groups Update calls into bolt transactions.
	committer *groupcommit.Committer[storage.Tx]
	// closed is set when Close begins.
	closed atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed, unless opts.ReadOnly) the store kept in the
// file at path, creating its parent directory with mode 0700 if missing.
//
// If another process holds the file, Open gives up after opts.LockTimeout
// with an error wrapping storage.ErrLocked. A file that is not a bbolt
// database, or is damaged, gives an error naming the file and what to do.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if path == "" {
		return nil, errors.New("open store: no path given")
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store %s read-only: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: create directory: %w", path, err)
	}

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, describeOpenError(path, err))
	}

	if opts.ReadOnly {
		err = db.View(func(tx *bbolt.Tx) error { return checkLayout(tx, path) })
	} else {
		err = db.Update(func(tx *bbolt.Tx) error { return createLayout(tx, path) })
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	s := &Store{
		db:       db,
		path:     path,
		readOnly: opts.ReadOnly,
	}
	s.committer = groupcommit.New("store "+path, opts.MaxBatch, s.runTx)
	return s, nil
}

// lockedError is what Open returns when another process holds the file.
type lockedError struct {
	path  string
	cause error
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("database %s is locked by another signoff process; stop it, or point this command at another file", e.path)
}

func (e *lockedError) Unwrap() []error { return []error{storage.ErrLocked, e.cause} }

// describeOpenError turns bbolt's terse open errors into ones that say what to
// do; it keeps the original error in the chain.
func describeOpenError(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return &lockedError{path: path, cause: err}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("%s is not a readable signoff database (%w); "+
			"if it is the right file, it is damaged: restore it from a backup, or inspect it with `bbolt check %s`", path, err, path)
	default:
		return err
	}
}

// fillPercents are the split thresholds of the buckets whose new keys sort
// after the old ones (sequence numbers, time-ordered request ids, index keys
// that start with a time): when a page splits, the left page keeps this
// share of a page. bbolt's default (one half) suits keys that arrive in
// random order; for appended keys it leaves every page half empty, which
// doubled the file (docs/performance.md). Audit records are never
// rewritten, so their pages fill completely; requests and outbox entries
// are rewritten in place (votes, attempts) and keep a little room.
var fillPercents = []struct {
	bucket  []byte
	percent float64
}{
	{bucketAudit, 1.0},
	{bucketRequests, 1.0},
	{bucketByTime, 1.0},
	{bucketByExpiry, 1.0},
	{bucketPendingBy, 0.9},
	{bucketOutbox, 0.9},
}

// Bucket names.
var (
	bucketRequests = []byte("requests")
	bucketByScope  = []byte("requests_by_scope")
	bucketByExpiry = []byte("requests_by_expiry")
	bucketByTime   = []byte("requests_by_time")
	bucketAudit    = []byte("audit")
	bucketOutbox   = []byte("outbox")
	bucketMeta     = []byte("meta")

	bucketLinks            = []byte("links")
	bucketAttempts         = []byte("link_attempts")
	bucketAttemptsByExpiry = []byte("link_attempts_by_expiry")
	bucketConversations    = []byte("conversations")
	bucketNonces           = []byte("nonces")
	bucketNoncesByExpiry   = []byte("nonces_by_expiry")
	// bucketPendingBy indexes pending requests by requester (issuer,
	// subject, creation time, id), for the per-requester cap.
	bucketPendingBy = []byte("requests_pending_by_requester")

	// coreBuckets are in every signoff database; a file without one of them
	// is not a signoff store.
	coreBuckets = [][]byte{bucketRequests, bucketByScope, bucketByExpiry, bucketByTime, bucketAudit, bucketOutbox, bucketMeta}
	// laterBuckets were added after files were already in use: a read-write
	// Open creates them, a read-only one treats a missing one as empty.
	laterBuckets = [][]byte{bucketLinks, bucketAttempts, bucketAttemptsByExpiry, bucketConversations, bucketNonces, bucketNoncesByExpiry, bucketPendingBy}

	keySchema    = []byte("schema")
	keyAuditHead = []byte("audit_head")
)

func createLayout(tx *bbolt.Tx, path string) error {
	// A file from before laterBuckets existed gains them here, in the same
	// transaction as everything else Open writes.
	backfillPendingBy := tx.Bucket(bucketPendingBy) == nil && tx.Bucket(bucketByExpiry) != nil
	for _, name := range slices.Concat(coreBuckets, laterBuckets) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if backfillPendingBy {
		// A file from before the per-requester index: index the requests
		// pending now, so the cap counts them too.
		if err := indexPendingByRequester(tx); err != nil {
			return fmt.Errorf("index pending requests by requester: %w", err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keySchema); v != nil {
		if err := checkSchema(v, path); err != nil {
			return err
		}
		if be64(v) == schemaVersion {
			return nil
		}
	}
	if err := meta.Put(keySchema, u64key(schemaVersion)); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	return nil
}

func checkLayout(tx *bbolt.Tx, path string) error {
	for _, name := range coreBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%s has no %q bucket: it is not a signoff database, "+
				"or no signoff has opened it for writing yet; check the path", path, name)
		}
	}
	return checkSchema(tx.Bucket(bucketMeta).Get(keySchema), path)
}

func checkSchema(v []byte, path string) error {
	if len(v) != 8 {
		return fmt.Errorf("%s has a malformed schema version; restore it from a backup", path)
	}
	if got := be64(v); got < 1 || got > schemaVersion {
		return fmt.Errorf("%s has schema version %d, this signoff understands 1 to %d; use a newer signoff", path, got, schemaVersion)
	}
	return nil
}

// Path returns the file the store is kept in.
func (s *Store) Path() string { return s.path }

// Update runs fn in a read-write transaction, grouped with other callers'
// functions into one durable commit (see the package doc). fn may run more
// than once. The ctx is checked before the call is queued; once queued, Update
// waits for its outcome, since the commit may land regardless. A panic in fn
// is returned as an error and nothing fn wrote is kept.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("update store %s: %w", s.path, err)
	}
	if s.readOnly {
		return fmt.Errorf("update store %s: %w", s.path, berrors.ErrDatabaseReadOnly)
	}
	return s.committer.Update(ctx, fn)
}

// runTx runs body in one bolt read-write transaction (groupcommit.RunFunc).
func (s *Store) runTx(body func(storage.Tx) error) error {
	return s.db.Update(func(btx *bbolt.Tx) error {
		for _, f := range fillPercents {
			btx.Bucket(f.bucket).FillPercent = f.percent
		}
		return body(&writeTx{readTx{tx: btx}})
	})
}

// View runs fn in a read-only transaction. fn sees one consistent snapshot.
func (s *Store) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	return s.read(ctx, "view", func(btx *bbolt.Tx) error {
		return fn(&readTx{tx: btx})
	})
}

// read runs fn in one bolt read transaction of the open store and returns
// fn's error as it is; what ("view", "back up") names the call in the
// errors of its own.
func (s *Store) read(ctx context.Context, what string, fn func(*bbolt.Tx) error) error {
	if err := s.usable(ctx, what); err != nil {
		return err
	}
	var fnErr error
	err := s.db.View(func(btx *bbolt.Tx) error {
		fnErr = fn(btx)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("%s store %s: %w", what, s.path, s.dbError(err))
	}
	return nil
}

// usable refuses a call (what, e.g. "view") whose ctx is done or that
// comes after Close.
func (s *Store) usable(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s store %s: %w", what, s.path, err)
	}
	if s.closed.Load() {
		return fmt.Errorf("%s store %s: %w", what, s.path, storage.ErrClosed)
	}
	return nil
}

// dbError maps bbolt's "not open" to storage.ErrClosed.
func (s *Store) dbError(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w (%w)", storage.ErrClosed, err)
	}
	return err
}

// AuditRecords calls fn with every audit record whose sequence number is at
// least from, in order. It reads auditChunk records per short read
// transaction and calls fn outside any transaction, so a long export neither
// pins old pages nor blocks the file from growing. ctx is checked between
// chunks.
func (s *Store) AuditRecords(ctx context.Context, from uint64, fn func(seq uint64, record []byte) error) error {
	return record.WalkAudit(from, func(from uint64) ([]record.Audit, error) {
		if err := s.usable(ctx, "read audit records of"); err != nil {
			return nil, err
		}
		chunk := make([]record.Audit, 0, record.AuditChunk)
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketAudit).Cursor()
			for k, v := c.Seek(u64key(from)); k != nil && len(chunk) < record.AuditChunk; k, v = c.Next() {
				data, err := unpackCopy(v)
				if err != nil {
					return fmt.Errorf("audit record %d: %w", be64(k), err)
				}
				chunk = append(chunk, record.Audit{Seq: be64(k), Data: data})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read audit records of store %s from %d: %w", s.path, from, s.dbError(err))
		}
		return chunk, nil
	}, fn)
}

// Ping reports whether the store is open and its file readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.usable(ctx, "ping"); err != nil {
		return err
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketRequests) == nil {
			return errors.New("requests bucket missing")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ping store %s: %w", s.path, s.dbError(err))
	}
	return nil
}

// Backup writes a consistent copy of the whole database file to w while the
// store stays in use (a hot backup), and returns the number of bytes written.
// The copy opens with Open like the original. Writers are not blocked, but
// the copy is of the moment Backup started.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.Snapshot(ctx, func(img storage.BackupImage) error {
		var err error
		n, err = img.WriteTo(w)
		return err
	})
	return n, err
}

// ctxWriter stops a backup once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (cw *ctxWriter) Write(p []byte) (int, error) {
	if err := cw.ctx.Err(); err != nil {
		return 0, err
	}
	return cw.w.Write(p)
}

// Close stops accepting work, waits until every Update already queued has
// committed, and closes the file. Later calls return storage.ErrClosed
// errors; calling Close again returns the first Close's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.committer.Close()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}
