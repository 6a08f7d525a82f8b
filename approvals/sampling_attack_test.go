package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

// The promise these tests attack: refused votes are sampled so that a
// flood cannot grow the audit log one record per click, and the records
// left out are counted exactly in the next record's "dropped": never
// lost, never counted twice, and never counted for a click that was not
// refused for that reason in the end.

// rerunStore runs the next Update's function once in a transaction it
// throws away, runs between (another writer getting in first), and
// answers storage.ErrConflict, so the service runs the function again, as
// a store retrying a serialization failure does.
type rerunStore struct {
	storage.Store
	mu      sync.Mutex
	between func()
}

var errThrowAway = errors.New("thrown away")

func (s *rerunStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	s.mu.Lock()
	between := s.between
	s.between = nil
	s.mu.Unlock()
	if between == nil {
		return s.Store.Update(ctx, fn)
	}
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errThrowAway
	})
	if !errors.Is(err, errThrowAway) {
		return err
	}
	between()
	return storage.ErrConflict
}

func (s *rerunStore) runAgainAfter(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.between = f
}

// rerunHarness is newHarness whose service writes through a rerunStore.
func rerunHarness(t *testing.T) (*harness, *rerunStore) {
	h := newHarness(t, approvals.Options{})
	rs := &rerunStore{Store: h.store}
	h.svc = approvals.New(rs, testPolicy(), approvals.Options{Clock: h.clock, Logger: testenv.DiscardLogger()})
	return h, rs
}

// droppedIn sums "dropped" over the vote.rejected records of reason.
func droppedIn(recs []audit.Record, reason approvals.Reason) (records, dropped int) {
	for _, rec := range recs {
		if rec.Type == audit.TypeVoteRejected && rec.Data["reason"] == string(reason) {
			records++
			n, _ := rec.Data["dropped"].(float64)
			dropped += int(n)
		}
	}
	return records, dropped
}

// fillWindow refuses CallbackRejectedPerMinute not_eligible clicks on r,
// filling that window.
func fillWindow(t *testing.T, h *harness, id string) {
	t.Helper()
	for i := range approvals.CallbackRejectedPerMinute {
		if _, err := h.vote(id, approver(fmt.Sprintf("dev%d", i), "dev"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotEligible) {
			t.Fatalf("click %d: %v", i, err)
		}
	}
}

// flushWindow starts a new minute and refuses one more not_eligible
// click, whose record carries what the window counted.
func flushWindow(t *testing.T, h *harness, id string) {
	t.Helper()
	h.clock.Advance(time.Minute)
	if _, err := h.vote(id, approver("flush", "dev"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotEligible) {
		t.Fatal(err)
	}
}

// TestAttackSampledRefusalRunAgainForAnotherReason: a click whose first
// run was refused (and left out of a full window) but whose committed run
// was refused for another reason was not a refusal of the first kind: the
// first window does not count it as dropped.
func TestAttackSampledRefusalRunAgainForAnotherReason(t *testing.T) {
	h, rs := rerunHarness(t)
	r := h.create("deploy-prod", deployParams())
	fillWindow(t, h, r.ID)

	rs.runAgainAfter(func() {
		// Between the runs the requester cancels: the second run finds
		// the request no longer pending.
		if _, err := h.svc.Cancel(context.Background(), r.ID, approvals.Canceller{Issuer: requester.Issuer, Subject: requester.Subject}); err != nil {
			t.Errorf("cancel between the runs: %v", err)
		}
	})
	if _, err := h.vote(r.ID, approver("eve", "dev"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("click run again: %v, want ErrNotPending", err)
	}
	r2 := h.create("deploy-prod", deployParams())
	flushWindow(t, h, r2.ID)
	if n, dropped := droppedIn(h.records(), approvals.ReasonNotEligible); n != approvals.CallbackRejectedPerMinute+1 || dropped != 0 {
		t.Fatalf("not_eligible: %d records, %d dropped; want %d records and none dropped (no not_eligible click was left out)",
			n, dropped, approvals.CallbackRejectedPerMinute+1)
	}
	if n, _ := droppedIn(h.records(), approvals.ReasonNotPending); n != 1 {
		t.Fatalf("not_pending records = %d, want 1", n)
	}
}

// TestAttackSampledRefusalRunAgainCounted: a click whose first run was
// refused and left out of a full window, but whose committed run counted
// the vote (the IdP gave the group back in between), is no refusal: the
// window does not count it as dropped.
func TestAttackSampledRefusalRunAgainCounted(t *testing.T) {
	h, rs := rerunHarness(t)
	r := h.create("deploy-prod", deployParams())
	fillWindow(t, h, r.ID)
	mustSaveLink(t, h, sampleLink("sub-alice")) // no group yet
	rs.runAgainAfter(func() { mustSaveLink(t, h, sampleLink("sub-alice", "sre")) })
	res, err := h.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: r.ID, Approver: approver("alice", "sre"), Decision: storage.DecisionApprove,
		Source:        approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U1", CallbackID: "cb-1"},
		LinkedAccount: &identity.Account{Platform: "slack", Workspace: "T1", User: "U1"},
	})
	if err != nil || !res.Counted {
		t.Fatalf("vote run again: %+v %v, want counted", res, err)
	}
	flushWindow(t, h, r.ID)
	if n, dropped := droppedIn(h.records(), approvals.ReasonNotEligible); n != approvals.CallbackRejectedPerMinute+1 || dropped != 0 {
		t.Fatalf("not_eligible: %d records, %d dropped; want %d records and none dropped (no not_eligible click was left out)",
			n, dropped, approvals.CallbackRejectedPerMinute+1)
	}
}

// TestAttackConcurrentRefusalsCountedExactly: many refusals at once,
// some of them failing to commit, are written or counted exactly once.
func TestAttackConcurrentRefusalsCountedExactly(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	const clicks = 200
	var wg sync.WaitGroup
	for i := range clicks {
		wg.Go(func() {
			if _, err := h.vote(r.ID, approver(fmt.Sprintf("dev%d", i), "dev"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotEligible) {
				t.Errorf("click %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	flushWindow(t, h, r.ID)
	n, dropped := droppedIn(h.records(), approvals.ReasonNotEligible)
	if n+dropped != clicks+1 {
		t.Fatalf("%d records + %d dropped = %d, want %d refused clicks", n, dropped, n+dropped, clicks+1)
	}
}

// TestAttackSelfApprovalNotHiddenByAnotherFlood: a flood of other
// refusals (members who may not approve, unknown ids, clicks from
// unlinked accounts) does not leave a requester's attempt to approve
// their own request out of the audit log: each reason has its own window.
func TestAttackSelfApprovalNotHiddenByAnotherFlood(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams()) // requested by octocat
	ctx := context.Background()
	for i := range 3 * approvals.CallbackRejectedPerMinute {
		who := approver(fmt.Sprintf("dev%d", i), "dev")
		if _, err := h.vote(r.ID, who, storage.DecisionApprove); !errors.Is(err, approvals.ErrNotEligible) {
			t.Fatal(err)
		}
		if _, err := h.vote("req_nope", who, storage.DecisionApprove); !errors.Is(err, approvals.ErrUnknownRequest) {
			t.Fatal(err)
		}
		if err := h.svc.RecordUnverifiedVote(ctx, approvals.UnverifiedVote{RequestID: r.ID, Reason: approvals.ReasonNotLinked,
			Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: fmt.Sprintf("UX%d", i)}, Decision: storage.DecisionApprove}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.vote(r.ID, approver("octocat", "sre"), storage.DecisionApprove); !errors.Is(err, approvals.ErrSelfApproval) {
		t.Fatalf("self-approval: %v", err)
	}
	for _, rec := range h.records() {
		if rec.Type == audit.TypeVoteRejected && rec.Data["reason"] == string(approvals.ReasonSelfApproval) &&
			rec.Actor != nil && rec.Actor.Subject == "sub-octocat" {
			return
		}
	}
	t.Fatal("the self-approval attempt left no vote.rejected record naming its approver")
}
