package approvals_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// failingStore fails the first Tx write of the named kind, to prove a state
// change commits whole or not at all.
type failingStore struct {
	storage.Store
	failOn string
}

var errInjected = errors.New("injected failure")

func (f *failingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return f.Store.Update(ctx, func(tx storage.Tx) error { return fn(&failingTx{Tx: tx, failOn: f.failOn}) })
}

type failingTx struct {
	storage.Tx
	failOn string
}

func (t *failingTx) AppendAudit(seq uint64, hash string, rec []byte) error {
	if t.failOn == "audit" {
		return errInjected
	}
	return t.Tx.AppendAudit(seq, hash, rec)
}

func (t *failingTx) Enqueue(e storage.OutboxEntry) (storage.OutboxEntry, error) {
	if t.failOn == "outbox" {
		return e, errInjected
	}
	return t.Tx.Enqueue(e)
}

func (t *failingTx) UpdateRequest(r storage.Request) error {
	if t.failOn == "update" {
		return errInjected
	}
	return t.Tx.UpdateRequest(r)
}

// TestFailedCommitLeavesNothing injects a failure after the request was
// written but before its audit record or outbox entry: nothing of the
// change may remain.
func TestFailedCommitLeavesNothing(t *testing.T) {
	for _, failOn := range []string{"audit", "outbox"} {
		t.Run("create/"+failOn, func(t *testing.T) {
			h := newHarness(t, approvals.Options{Platforms: []string{"slack"}})
			svc := approvals.New(&failingStore{Store: h.store, failOn: failOn}, testPolicy(), approvals.Options{Clock: h.clock, Platforms: []string{"slack"}, Logger: slog.New(slog.DiscardHandler)})
			_, _, err := svc.Create(context.Background(), approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams()})
			if !errors.Is(err, errInjected) {
				t.Fatalf("create: %v, want the injected failure", err)
			}
			list, err := h.svc.List(context.Background(), storage.RequestFilter{})
			if err != nil || len(list) != 0 {
				t.Fatalf("requests after failed create: %d (%v)", len(list), err)
			}
			if n := len(h.records()); n != 0 {
				t.Fatalf("%d audit records after failed create", n)
			}
			if n := len(h.outbox("")); n != 0 {
				t.Fatalf("%d outbox entries after failed create", n)
			}
		})
	}
	for _, failOn := range []string{"audit", "outbox", "update"} {
		t.Run("deciding-vote/"+failOn, func(t *testing.T) {
			h := newHarness(t, approvals.Options{Platforms: []string{"slack"}})
			r := h.create("restart", nil)
			before := len(h.records())
			beforeOutbox := len(h.outbox(""))
			svc := approvals.New(&failingStore{Store: h.store, failOn: failOn}, testPolicy(), approvals.Options{Clock: h.clock, Platforms: []string{"slack"}, Logger: slog.New(slog.DiscardHandler)})
			_, err := svc.Vote(context.Background(), approvals.VoteInput{RequestID: r.ID, Approver: approver("alice", "sre"), Decision: storage.DecisionApprove, Source: approvals.Source{Platform: "dev"}})
			if !errors.Is(err, errInjected) {
				t.Fatalf("vote: %v, want the injected failure", err)
			}
			got, _ := h.svc.Get(context.Background(), r.ID)
			if got.State != storage.StatePending || len(got.Votes) != 0 || got.Version != r.Version {
				t.Fatalf("request changed by a failed commit: %+v", got)
			}
			if n := len(h.records()); n != before {
				t.Fatalf("audit grew from %d to %d", before, n)
			}
			if n := len(h.outbox("")); n != beforeOutbox {
				t.Fatalf("outbox grew from %d to %d", beforeOutbox, n)
			}
			// The same vote through the healthy store still works.
			if res, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove); err != nil || res.Request.State != storage.StateApproved {
				t.Fatalf("vote after failure: %+v %v", res, err)
			}
		})
	}
}
