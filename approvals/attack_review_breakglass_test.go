package approvals_test

import (
	"context"
	"errors"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

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
