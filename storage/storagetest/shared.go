package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// RunShared runs the suite's concurrent cases against several stores that
// share one database, as several signoff replicas do. newStores must return
// at least two new, open stores on one fresh, empty database; RunShared
// closes them. Each case sees the stores as one: every call goes to the next
// store in turn, so the racing transactions of a case come from different
// stores (different connections, or different processes' worth of state).
func RunShared(t *testing.T, newStores func(t *testing.T) []storage.Store) {
	tests := []suiteCase{
		{"ConcurrentAuditChain", testConcurrentAuditChain},
		{"ConcurrentCAS", testConcurrentCAS},
		{"ConcurrentNonce", testConcurrentNonce},
		{"ConcurrentIdempotentCreate", testConcurrentIdempotentCreate},
		{"ConcurrentOutboxClaim", testConcurrentOutboxClaim},
		{"LinkAttemptSingleUse", testLinkAttemptSingleUse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stores := newStores(t)
			if len(stores) < 2 {
				t.Fatalf("RunShared needs at least two stores on one database, got %d", len(stores))
			}
			t.Cleanup(func() {
				for i, s := range stores {
					if err := s.Close(); err != nil {
						t.Errorf("Close store %d: %v", i, err)
					}
				}
			})
			tc.fn(t, &roundRobin{stores: stores})
		})
	}
}

// roundRobin is one storage.Store made of several on one database: each call
// goes to the next.
type roundRobin struct {
	stores []storage.Store
	next   atomic.Uint64
}

func (r *roundRobin) pick() storage.Store {
	return r.stores[(r.next.Add(1)-1)%uint64(len(r.stores))]
}

func (r *roundRobin) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return r.pick().Update(ctx, fn)
}

func (r *roundRobin) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	return r.pick().View(ctx, fn)
}

func (r *roundRobin) AuditRecords(ctx context.Context, from uint64, fn func(uint64, []byte) error) error {
	return r.pick().AuditRecords(ctx, from, fn)
}

func (r *roundRobin) Ping(ctx context.Context) error { return r.pick().Ping(ctx) }

// Close is left to RunShared's cleanup.
func (r *roundRobin) Close() error { return nil }

// testConcurrentIdempotentCreate has 24 callers create a request each, all
// under one idempotency scope, the way retried CI calls arrive at several
// replicas at once: exactly one is stored, every other caller is refused with
// ErrAlreadyExists, and the scope finds the one stored.
func testConcurrentIdempotentCreate(t *testing.T, s storage.Store) {
	const callers = 24
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []string
	)
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			r := minimalRequest(fmt.Sprintf("idem-%02d", i), storage.StatePending, base, base.Add(time.Hour))
			r.IdempotencyScope = "github|repo:acme/api|key-1"
			err := s.Update(t.Context(), func(tx storage.Tx) error {
				if _, err := tx.RequestByIdempotencyScope(r.IdempotencyScope); err == nil {
					return fmt.Errorf("scope taken: %w", storage.ErrAlreadyExists)
				} else if !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				return tx.CreateRequest(r)
			})
			switch {
			case err == nil:
				mu.Lock()
				created = append(created, r.ID)
				mu.Unlock()
			case errors.Is(err, storage.ErrAlreadyExists):
			default:
				t.Errorf("caller %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(created) != 1 {
		t.Fatalf("%d of %d concurrent creates under one idempotency scope succeeded (%v), want exactly 1", len(created), callers, created)
	}
	got := viewValue(t, s, func(tx storage.ReadTx) (storage.Request, error) {
		return tx.RequestByIdempotencyScope("github|repo:acme/api|key-1")
	})
	if got.ID != created[0] {
		t.Errorf("the scope finds %q, want the one created, %q", got.ID, created[0])
	}
	if n := len(listIDs(t, s, storage.RequestFilter{})); n != 1 {
		t.Errorf("%d requests stored, want 1", n)
	}
}

// testConcurrentOutboxClaim has 8 workers claim due outbox entries the way
// delivery workers do (DueOutbox, then a lease written with PutOutbox, in
// one Update) until none is left: every entry is claimed exactly once.
func testConcurrentOutboxClaim(t *testing.T, s storage.Store) {
	const entries, workers, batch = 60, 8, 3
	update(t, s, func(tx storage.Tx) error {
		for i := range entries {
			if _, err := tx.Enqueue(sampleOutbox(fmt.Sprintf("req-%02d", i), base.Add(-time.Minute))); err != nil {
				return err
			}
		}
		return nil
	})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = map[uint64]int{}
	)
	for w := range workers {
		wg.Go(func() {
			for {
				var mine []uint64
				err := s.Update(t.Context(), func(tx storage.Tx) error {
					mine = mine[:0]
					due, err := tx.DueOutbox(base, "", batch)
					if err != nil {
						return err
					}
					for _, e := range due {
						e.LeaseUntil = base.Add(time.Hour)
						e.Attempts++
						if err := tx.PutOutbox(e); err != nil {
							return err
						}
						mine = append(mine, e.ID)
					}
					return nil
				})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if len(mine) == 0 {
					return
				}
				mu.Lock()
				for _, id := range mine {
					claimed[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != entries {
		t.Errorf("%d of %d entries were claimed", len(claimed), entries)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("entry %d was claimed %d times, want once", id, n)
		}
	}
	view(t, s, func(tx storage.ReadTx) error {
		es, err := tx.DueOutbox(base, "", 0)
		if err == nil && len(es) != 0 {
			t.Errorf("%d entries still due after every worker stopped", len(es))
		}
		return err
	})
}
