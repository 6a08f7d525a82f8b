package cards

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// writeCounter counts a store's write transactions and can fail the next
// one, the way a full disk would.
type writeCounter struct {
	storage.Store
	writes   atomic.Int64
	failNext atomic.Bool
}

func (w *writeCounter) Update(ctx context.Context, fn func(storage.Tx) error) error {
	w.writes.Add(1)
	if w.failNext.CompareAndSwap(true, false) {
		return errors.New("disk full")
	}
	return w.Store.Update(ctx, fn)
}

func newCountingEnv(t *testing.T) (*env, *writeCounter) {
	t.Helper()
	st := &writeCounter{Store: testenv.OpenStore(t)}
	pol := &policy.Policy{Actions: map[string]*policy.Action{"deploy": {
		Name: "deploy", Requesters: []policy.RequesterRule{{Issuer: "github"}},
		Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 3},
		TTL:       time.Hour, Notify: policy.Notify{Slack: []string{"C1"}},
	}}}
	return newEnvWith(t, st, pol, approvals.Options{}), st
}

// The card updates of one batch are completed together: under a click
// storm the deliverer spends one commit on a batch instead of one per
// card, leaving the store's writer to the votes people wait on.
func TestBatchOfUpdatesCompletesInOneCommit(t *testing.T) {
	e, st := newCountingEnv(t)
	var reqs []storage.Request
	for range 3 {
		reqs = append(reqs, e.create())
	}
	e.deliver() // the three posts
	for _, r := range reqs {
		e.vote(r, "alice")
	}
	before := st.writes.Load()
	if n := e.deliver(); n != 3 {
		t.Fatalf("delivered %d entries, want the 3 updates", n)
	}
	if got := st.writes.Load() - before; got != 2 {
		t.Fatalf("a batch of 3 updates took %d write transactions, want 2 (the claim and one completion)", got)
	}
	if got := strings.Count(strings.Join(e.chat.ops(), ","), "update"); got != 3 {
		t.Fatalf("updates sent: %d, want 3 (%v)", got, e.chat.ops())
	}
	if e.deliver() != 0 {
		t.Fatal("entries left after their completion")
	}
}

// When the batch's completion fails, the platform is not called again:
// the next attempt only completes the updates it already delivered.
func TestFailedBatchCompletionDoesNotUpdateAgain(t *testing.T) {
	e, st := newCountingEnv(t)
	r1, r2 := e.create(), e.create()
	e.deliver()
	e.vote(r1, "alice")
	e.vote(r2, "alice")
	d := e.d
	d.mu.Lock()
	entries, err := e.svc.Claim(context.Background(), d.kind, batch, lease)
	d.mu.Unlock()
	if err != nil || len(entries) != 2 {
		t.Fatalf("claim: %v %v", entries, err)
	}
	// Deliver the claimed batch, then fail its completion.
	d.mu.Lock()
	_, _ = d.inOrder(context.Background(), entries, entryKey, func(en storage.OutboxEntry, pause *time.Time) {
		if err := d.deliver(context.Background(), en, pause); err != nil {
			t.Error(err)
		}
	})
	st.failNext.Store(true)
	d.completeUpdated(context.Background())
	d.mu.Unlock()
	if got := strings.Count(strings.Join(e.chat.ops(), ","), "update"); got != 2 {
		t.Fatalf("updates sent: %d, want 2", got)
	}
	// The failed completion released both for a prompt retry: they are
	// completed without a second update.
	e.clock.Advance(BackoffBase)
	e.deliver()
	if got := strings.Count(strings.Join(e.chat.ops(), ","), "update"); got != 2 {
		t.Fatalf("updates sent after the retry: %d, want still 2 (%v)", got, e.chat.ops())
	}
	if e.deliver() != 0 {
		t.Fatal("entries left after the retry")
	}
}
