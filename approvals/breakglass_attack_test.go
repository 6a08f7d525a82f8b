package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

// TestAttackConcurrentBreakGlassOfOnePerson: one person breaking glass
// many times at once, from several CI subjects (branches) with distinct
// idempotency keys, gets one break-glass; the others find its review
// pending.
func TestAttackConcurrentBreakGlassOfOnePerson(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	const n = 12
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		errs    []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := breakGlassInput(fmt.Sprintf("key-%d", i))
			in.Requester.Subject = fmt.Sprintf("repo:acme/api:ref:refs/heads/b%d", i)
			_, ok, err := h.svc.Create(context.Background(), in)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created++
			}
			if err != nil && !errors.Is(err, approvals.ErrReviewPending) {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if created != 1 || len(errs) > 0 {
		t.Fatalf("%d concurrent break-glass creates of one person: %d created, unexpected errors %v", n, created, errs)
	}
}

// hookStore runs after, once, when a View returns: the moment between the
// break-glass create's read of ended reviews and its write transaction.
type hookStore struct {
	storage.Store
	mu    sync.Mutex
	after func()
}

func (s *hookStore) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	err := s.Store.View(ctx, fn)
	s.mu.Lock()
	after := s.after
	s.after = nil
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return err
}

// TestAttackLiftBetweenTheReadAndTheWrite: a block lifted after the
// create listed the ended reviews no longer blocks: the write
// transaction reads each candidate again.
func TestAttackLiftBetweenTheReadAndTheWrite(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	hs := &hookStore{Store: h.store}
	svc := approvals.New(hs, h.svc.Policy(), approvals.Options{Clock: h.clock, Logger: testenv.DiscardLogger(), Platforms: []string{"slack"}})
	ctx := context.Background()
	first, _, err := svc.Create(ctx, breakGlassInput("one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.vote(first.BreakGlass.Review, approver("lead", "sre-leads"), storage.DecisionDeny); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Create(ctx, breakGlassInput("two")); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("break-glass after a denied review: %v", err)
	}
	hs.after = func() {
		other := approvals.AdminPerson{Issuer: "login", Subject: "00u-lead", Person: approver("lead", "sre-leads").Person()}
		if _, err := svc.LiftBlock(ctx, first.BreakGlass.Review, other, "justified"); err != nil {
			t.Errorf("lift: %v", err)
		}
	}
	if _, ok, err := svc.Create(ctx, breakGlassInput("three")); err != nil || !ok {
		t.Fatalf("break-glass after the block was lifted meanwhile: %v %v", ok, err)
	}
}

// A denied review blocks its requester under another subject whose person
// claim differs only in case and surrounding space, and replaying the
// idempotency key of the original break-glass answers the old request
// without breaking glass again (no second request, no second review).
func TestDeniedReviewBlockSurvivesOtherSubjectAndKeyReplay(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	bg := h.breakGlass(breakGlassInput("run-1"))
	reviewID := bg.BreakGlass.Review
	if _, err := h.vote(reviewID, approver("lead", "sre-leads"), storage.DecisionDeny); err != nil {
		t.Fatalf("deny: %v", err)
	}

	other := breakGlassInput("run-2")
	other.Requester.Subject = "repo:acme/web:ref:refs/heads/hotfix"
	other.Requester.Person = "  OctoCat "
	other.Requester.Claims = map[string]string{"repository": "acme/web", "actor": "OctoCat"}
	if _, _, err := h.svc.Create(context.Background(), other); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("break-glass by the same person under another subject: %v", err)
	}

	before := len(h.records())
	r, created, err := h.svc.Create(context.Background(), breakGlassInput("run-1"))
	if err != nil || created || r.ID != bg.ID {
		t.Fatalf("replay of the first key: id %s created=%v err=%v, want %s unchanged", r.ID, created, err, bg.ID)
	}
	if n := len(h.records()); n != before {
		t.Fatalf("the replay wrote %d audit records", n-before)
	}
	if got := h.get(reviewID); got.State != storage.StateDenied || !got.BreakGlass.Lifted.IsZero() {
		t.Fatalf("review after the attempts: %+v", got)
	}
}
