package pgstore

// The replica capabilities: a change feed over LISTEN/NOTIFY and named
// locks over session advisory locks (storage.ChangeFeed, storage.Locker).

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signoff-dev/signoff/storage"
)

var (
	_ storage.ChangeFeed = (*Store)(nil)
	_ storage.Locker     = (*Store)(nil)
)

// channelName is the NOTIFY channel of the installation in schema: derived
// from the schema, so installations in different schemas of one database do
// not hear each other, and short enough whatever the schema's name.
func channelName(schema string) string {
	sum := sha256.Sum256([]byte(schema))
	return "signoff_" + hex.EncodeToString(sum[:])[:16]
}

// notifyRequest queues a notice that request id changed, delivered to
// every listener when the transaction commits (and not at all if it rolls
// back). Ids that a notice cannot carry (NUL, invalid UTF-8, too long) are
// left to the listeners' periodic re-read.
func (t *writeTx) notifyRequest(id string) error {
	if id == "" || len(id) > 1000 || !utf8.ValidString(id) || containsNUL(id) {
		return nil
	}
	_, err := t.exec("notify a request change", `SELECT pg_notify($1, $2)`, t.channel, id)
	return err
}

func containsNUL(s string) bool {
	for i := range len(s) {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// WatchRequests implements storage.ChangeFeed: it LISTENs on the
// installation's channel on a connection of its own and calls fn for each
// notice. When the connection fails it is re-made with backoff (notices in
// between are missed, as the interface allows).
func (s *Store) WatchRequests(ctx context.Context, fn func(requestID string)) error {
	wait := 250 * time.Millisecond
	for {
		err := s.listen(ctx, fn, func() { wait = 250 * time.Millisecond })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, storage.ErrClosed) {
			return err
		}
		s.opts.Logger.Warn("listening for other replicas' changes failed; listening again", "database", s.desc, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// listen holds a connection of its own (not the pool's) in LISTEN until it
// fails or ctx ends; listening is called once the LISTEN is in place.
func (s *Store) listen(ctx context.Context, fn func(string), listening func()) error {
	if err := s.enter("listen on"); err != nil {
		return err
	}
	s.inflight.Done() // a listener must not hold Close up: ctx ends it
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}

// lockKey is the advisory lock key of the lock called name: a digest of
// the installation's schema and the name (any bytes), so that signoff's
// named locks stay apart from each other, from the migration lock and from
// other installations' locks.
func (s *Store) lockKey(name string) int64 {
	sum := sha256.Sum256([]byte("signoff.lock\x00" + s.schema + "\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Lock implements storage.Locker with a session advisory lock, held on a
// connection of the lock pool (never the one commits use) until unlock: if
// the process dies, the database ends the session and the lock with it.
func (s *Store) Lock(ctx context.Context, name string) (func(), error) {
	if err := s.enter("lock"); err != nil {
		return nil, err
	}
	conn, err := s.locks.Acquire(ctx)
	if err != nil {
		s.inflight.Done()
		return nil, fmt.Errorf("lock %q on %s: %w", name, s.desc, err)
	}
	key := s.lockKey(name)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		// A cancelled wait may leave the session in doubt: do not reuse it.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
		s.inflight.Done()
		return nil, fmt.Errorf("lock %q on %s: %w", name, s.desc, err)
	}
	var once sync.Once
	return func() { once.Do(func() { s.unlock(conn, key) }) }, nil
}

// unlock releases a named lock and hands its connection back.
func (s *Store) unlock(conn *pgxpool.Conn, key int64) {
	uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var released bool
	if err := conn.QueryRow(uctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil || !released {
		// Closing the session releases whatever it holds.
		_ = conn.Conn().Close(context.Background())
	}
	conn.Release()
	s.inflight.Done()
}
