package storage

import "context"

// What a backend that several processes share (PostgreSQL) offers beyond
// Store, so that replicas behave as one process would. Callers type-assert
// a Store to each:
//
//	if feed, ok := store.(storage.ChangeFeed); ok { … }
//
// A single-process backend (bbolt) implements neither: its one process's
// own locks and wake-ups already cover everything.

// ChangeFeed tells every process sharing the database that a request
// changed, whichever process committed the change.
type ChangeFeed interface {
	// WatchRequests calls fn with the id of each request whose change
	// commits (UpdateRequest), in this process or another, until ctx
	// ends; then it returns ctx's error. A notice may come more than once
	// and, while the connection to the database is being re-made, may be
	// missed altogether: a caller that must not miss a change re-reads
	// now and then as well. fn must not block.
	WatchRequests(ctx context.Context, fn func(requestID string)) error
}

// Locker holds named locks across every process sharing the database, for
// work that must not run twice at once anywhere but cannot run inside a
// transaction (it waits on the network): spending a rotating refresh token,
// updating one chat card.
type Locker interface {
	// Lock blocks until this process holds the lock called name, or ctx
	// ends (then it returns ctx's error and holds nothing). unlock
	// releases it; a process that dies releases its locks with it. Locks
	// are not re-entrant: a holder that asks again waits for itself.
	Lock(ctx context.Context, name string) (unlock func(), err error)
}
