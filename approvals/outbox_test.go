package approvals_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

func TestRecordCardPosted(t *testing.T) {
	h := newHarness(t, approvals.Options{Platforms: []string{"slack"}})
	ctx := context.Background()
	r := h.create("deploy-prod", deployParams())
	posts := h.outbox(approvals.KindNotifyPrefix + "slack")
	if len(posts) != 1 {
		t.Fatalf("outbox after create: %+v", posts)
	}
	card := storage.Card{Platform: "slack", Conversation: "C1", MessageID: "1700000000.000100"}
	dup, err := h.svc.RecordCardPosted(ctx, posts[0].ID, r.ID, "C1", card)
	if err != nil || dup {
		t.Fatalf("RecordCardPosted: duplicate=%v err=%v", dup, err)
	}
	got, err := h.svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Cards) != 1 || got.Cards[0] != card {
		t.Errorf("cards after the post: %+v, want [%+v]", got.Cards, card)
	}
	if left := h.outbox(approvals.KindNotifyPrefix); len(left) != 0 {
		t.Errorf("the post's entry is still queued: %+v", left)
	}

	// The entry is gone now: completing it again says so and changes nothing.
	if _, err := h.svc.RecordCardPosted(ctx, posts[0].ID, r.ID, "C1", card); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second completion: err = %v, want storage.ErrNotFound", err)
	}

	// Another post of the same card, addressed by the name the policy uses
	// or by the conversation the card landed in, is a duplicate: the entry
	// is completed and the request keeps its one card.
	for _, step := range []struct{ voter, target string }{{"alice", "C1"}, {"bob", "#deploys"}} {
		if _, err := h.vote(r.ID, approver(step.voter, "sre"), storage.DecisionApprove); err != nil {
			t.Fatal(err)
		}
		entries := h.outbox(approvals.KindNotifyPrefix + "slack")
		if len(entries) != 1 {
			t.Fatalf("outbox after %s's vote: %+v", step.voter, entries)
		}
		other := card
		other.MessageID = "1700000001.000200"
		dup, err := h.svc.RecordCardPosted(ctx, entries[0].ID, r.ID, step.target, other)
		if err != nil || !dup {
			t.Errorf("post to %s of a card already posted: duplicate=%v err=%v", step.target, dup, err)
		}
		if got, _ := h.svc.Get(ctx, r.ID); len(got.Cards) != 1 || got.Cards[0] != card {
			t.Errorf("cards after a duplicate post to %s: %+v", step.target, got.Cards)
		}
		if left := h.outbox(approvals.KindNotifyPrefix); len(left) != 0 {
			t.Errorf("the duplicate's entry is still queued: %+v", left)
		}
	}
}

func TestCompleteRemovesEntry(t *testing.T) {
	h := newHarness(t, approvals.Options{Platforms: []string{"slack"}})
	ctx := context.Background()
	h.create("deploy-prod", deployParams())
	entries := h.outbox(approvals.KindNotifyPrefix + "slack")
	if len(entries) != 1 {
		t.Fatalf("outbox after create: %+v", entries)
	}
	if err := h.svc.Complete(ctx, entries[0].ID); err != nil {
		t.Fatal(err)
	}
	if left := h.outbox(approvals.KindNotifyPrefix); len(left) != 0 {
		t.Errorf("entry still queued: %+v", left)
	}
	if err := h.svc.Complete(ctx, entries[0].ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Complete: err = %v, want storage.ErrNotFound", err)
	}
}

// countingStore counts write transactions.
type countingStore struct {
	storage.Store
	updates atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, fn)
}

// Workers poll for every kind of outbox entry several times a second. A
// poll that finds nothing due must not take the store's single writer (a
// commit and its fsyncs) from the votes and creates people wait on; one
// that finds something claims it in a write transaction as before.
func TestClaimWithNothingDueWritesNothing(t *testing.T) {
	st := &countingStore{Store: testenv.OpenStore(t)}
	svc := approvals.New(st, testPolicy(), approvals.Options{Clock: clock.NewFake(t0), Platforms: []string{"slack"}, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	for _, prefix := range []string{approvals.KindNotifyPrefix, approvals.KindExecute, approvals.KindRemindPrefix} {
		if got, err := svc.Claim(ctx, prefix, 10, time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("claim %s on an empty outbox: %v, %v", prefix, got, err)
		}
	}
	if got, err := svc.ClaimPublications(ctx, approvals.KindPublishPrefix, 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("claim publications on an empty outbox: %v, %v", got, err)
	}
	if n := st.updates.Load(); n != 0 {
		t.Fatalf("claims that found nothing due ran %d write transactions, want 0", n)
	}
	if _, _, err := svc.Create(ctx, approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	before := st.updates.Load()
	got, err := svc.Claim(ctx, approvals.KindNotifyPrefix, 10, time.Minute)
	if err != nil || len(got) == 0 {
		t.Fatalf("claim of the new request's card: %v, %v", got, err)
	}
	if n := st.updates.Load() - before; n != 1 {
		t.Fatalf("a claim that found work ran %d write transactions, want 1", n)
	}
	// Leased now: the next poll finds nothing due and writes nothing.
	before = st.updates.Load()
	if again, err := svc.Claim(ctx, approvals.KindNotifyPrefix, 10, time.Minute); err != nil || len(again) != 0 {
		t.Fatalf("claim of leased entries: %v, %v", again, err)
	}
	if n := st.updates.Load() - before; n != 0 {
		t.Fatalf("a poll of leased entries ran %d write transactions, want 0", n)
	}
}
