package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// TestPendingCapPerRequester: a requester with PendingPerRequester
// requests pending cannot create another until one leaves pending;
// another requester is not affected; an idempotent retry is answered at
// the cap.
func TestPendingCapPerRequester(t *testing.T) {
	const limit = 3
	h := newHarness(t, approvals.Options{PendingPerRequester: limit})
	ctx := context.Background()
	ask := func(who storage.Requester, key string) (storage.Request, bool, error) {
		return h.svc.Create(ctx, approvals.CreateInput{Requester: who, Action: "restart", Reason: "ship it", IdempotencyKey: key})
	}
	var made []storage.Request
	for i := range limit {
		r, created, err := ask(requester, fmt.Sprint("k", i))
		if err != nil || !created {
			t.Fatalf("create %d: created=%v err=%v", i+1, created, err)
		}
		made = append(made, r)
		h.clock.Advance(time.Second)
	}
	before := len(h.records())
	_, _, err := ask(requester, "one-more")
	var re *approvals.RefusalError
	if !errors.Is(err, approvals.ErrTooManyPending) || !errors.As(err, &re) || re.Reason != approvals.ReasonTooManyPending {
		t.Fatalf("create %d: err = %v, want a refusal wrapping ErrTooManyPending", limit+1, err)
	}
	for _, want := range []string{"3 requests pending", "cancel one", made[0].ID} {
		if !strings.Contains(re.Message, want) {
			t.Errorf("refusal %q does not say %q", re.Message, want)
		}
	}
	if n := len(h.records()); n != before {
		t.Errorf("a refused create wrote %d audit records", n-before)
	}
	// An idempotent retry creates nothing, so the cap does not refuse it.
	if r, created, err := ask(requester, "k1"); err != nil || created || r.ID != made[1].ID {
		t.Errorf("idempotent retry at the cap: %s created=%v err=%v; want %s again", r.ID, created, err, made[1].ID)
	}
	// Another requester (same issuer, other subject) has its own count.
	other := requester
	other.Subject = "repo:acme/web:ref:refs/heads/main"
	if _, created, err := ask(other, ""); err != nil || !created {
		t.Errorf("another requester refused: created=%v err=%v", created, err)
	}
	// Once one is cancelled there is room for exactly one more.
	if _, err := h.svc.Cancel(ctx, made[0].ID, approvals.Canceller{Issuer: requester.Issuer, Subject: requester.Subject}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := ask(requester, "after-cancel"); err != nil || !created {
		t.Fatalf("create after a cancel: created=%v err=%v", created, err)
	}
	if _, _, err := ask(requester, "again"); !errors.Is(err, approvals.ErrTooManyPending) {
		t.Fatalf("create beyond the cap again: %v", err)
	}
	// A decision frees a slot too.
	if _, err := h.vote(made[1].ID, approver("alice", "sre"), storage.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	if _, created, err := ask(requester, "after-decision"); err != nil || !created {
		t.Fatalf("create after a decision: created=%v err=%v", created, err)
	}
	// Requests past their expiry no longer count, even before the expiry
	// loop has marked them.
	h.clock.Advance(11 * time.Minute)
	if _, created, err := ask(requester, "after-expiry"); err != nil || !created {
		t.Fatalf("create after the pending ones expired: created=%v err=%v", created, err)
	}
}

// TestPendingCapHoldsUnderConcurrentCreates: creates racing each other
// never leave more than the cap pending.
func TestPendingCapHoldsUnderConcurrentCreates(t *testing.T) {
	const limit = 5
	h := newHarness(t, approvals.Options{PendingPerRequester: limit})
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := 0, 0
	for i := range 30 {
		wg.Go(func() {
			_, ok, err := h.svc.Create(context.Background(), approvals.CreateInput{Requester: requester, Action: "restart", IdempotencyKey: fmt.Sprint("c", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, approvals.ErrTooManyPending):
				refused++
			case err != nil:
				t.Errorf("create: %v", err)
			case ok:
				created++
			}
		})
	}
	wg.Wait()
	if created != limit || refused != 30-limit {
		t.Errorf("%d created, %d refused; want %d and %d", created, refused, limit, 30-limit)
	}
	pending, err := h.svc.List(context.Background(), storage.RequestFilter{States: []storage.State{storage.StatePending}})
	if err != nil || len(pending) != limit {
		t.Errorf("%d pending (err %v), want %d", len(pending), err, limit)
	}
}

// TestReplayAnswersWithoutCreating: Replay finds the request a key made,
// refuses a reused key with another body, and creates nothing.
func TestReplayAnswersWithoutCreating(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	in := approvals.CreateInput{Requester: requester, Action: "restart", Reason: "ship it", IdempotencyKey: "k"}
	if _, found, err := h.svc.Replay(ctx, in); found || err != nil {
		t.Fatalf("Replay before any create: found=%v err=%v", found, err)
	}
	r, _, err := h.svc.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	before := len(h.records())
	if got, found, err := h.svc.Replay(ctx, in); !found || err != nil || got.ID != r.ID {
		t.Errorf("Replay: %s found=%v err=%v; want %s", got.ID, found, err, r.ID)
	}
	changed := in
	changed.Reason = "something else"
	if _, _, err := h.svc.Replay(ctx, changed); !errors.Is(err, approvals.ErrIdempotencyConflict) {
		t.Errorf("Replay with another body: %v, want ErrIdempotencyConflict", err)
	}
	in.IdempotencyKey = ""
	if _, found, err := h.svc.Replay(ctx, in); found || err != nil {
		t.Errorf("Replay without a key: found=%v err=%v", found, err)
	}
	if n := len(h.records()); n != before {
		t.Errorf("Replay wrote %d audit records", n-before)
	}
}
