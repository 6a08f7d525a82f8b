package approvals_test

import (
	"context"
	"errors"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/storage"
)

// A vote whose approver was read from a chat account's link counts only if
// that link still stands, unchanged, when the vote is stored: a revoke (or
// an unlink, a relink to someone else, a link the IdP stopped backing)
// that commits while the click is on its way stops it. The check runs in
// the vote's own transaction, so no click can slip between the two.
func TestVoteThroughALinkCountsOnlyWhileTheLinkStands(t *testing.T) {
	ctx := context.Background()
	alice := approver("alice", "sre")
	aliceLink := sampleLink("sub-alice", "sre") // slack/T1/U1, the same issuer
	account := &identity.Account{Platform: "slack", Workspace: "T1", User: "U1"}

	cases := map[string]struct {
		setup func(t *testing.T, h *harness)
		count bool
		// refused is the refusal's sentinel and reason; default not linked.
		sentinel error
		reason   approvals.Reason
	}{
		"the link stands": {
			setup: func(t *testing.T, h *harness) { mustSaveLink(t, h, aliceLink) },
			count: true,
		},
		"no link": {
			setup: func(*testing.T, *harness) {},
		},
		"the link was revoked": {
			setup: func(t *testing.T, h *harness) {
				mustSaveLink(t, h, aliceLink)
				if err := h.svc.Unlink(ctx, "slack", "T1", "U1", "revoked by an admin"); err != nil {
					t.Fatal(err)
				}
			},
		},
		"the IdP stopped backing the link": {
			setup: func(t *testing.T, h *harness) {
				stale := aliceLink
				stale.Stale = true
				mustSaveLink(t, h, stale)
			},
		},
		"the account is now linked to someone else": {
			setup: func(t *testing.T, h *harness) { mustSaveLink(t, h, sampleLink("sub-mallory", "sre")) },
		},
		// Resolve read [sre]; a refresh committed since found alice out of
		// the group. The vote is judged on the link as it stands.
		"the IdP took the approver's group away": {
			setup:    func(t *testing.T, h *harness) { mustSaveLink(t, h, sampleLink("sub-alice")) },
			sentinel: approvals.ErrNotEligible, reason: approvals.ReasonNotEligible,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, approvals.Options{})
			r := h.create("deploy-prod", deployParams())
			c.setup(t, h)
			res, err := h.svc.Vote(ctx, approvals.VoteInput{
				RequestID: r.ID, Approver: alice, Decision: storage.DecisionApprove,
				Source:        approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U1", CallbackID: "cb-1"},
				LinkedAccount: account,
			})
			if c.count {
				if err != nil || !res.Counted {
					t.Fatalf("vote through a standing link: %+v %v", res, err)
				}
				return
			}
			sentinel, reason := c.sentinel, c.reason
			if sentinel == nil {
				sentinel, reason = approvals.ErrNotLinked, approvals.ReasonNotLinked
			}
			var refused *approvals.RefusalError
			if !errors.Is(err, sentinel) || !errors.As(err, &refused) || refused.Reason != reason {
				t.Fatalf("vote counted (or refused otherwise, want %s): %+v %v", reason, res, err)
			}
			got, gerr := h.svc.Get(ctx, r.ID)
			if gerr != nil || len(got.Votes) != 0 {
				t.Fatalf("the refused vote was stored: %+v %v", got.Votes, gerr)
			}
			recs := h.records()
			last := recs[len(recs)-1]
			if last.Type != audit.TypeVoteRejected || last.Data["reason"] != string(reason) {
				t.Errorf("last audit record %s %v, want vote.rejected %s", last.Type, last.Data, reason)
			}
		})
	}
}

// Without LinkedAccount (an API or dev-console vote, whose identity did
// not come from a chat link) no link is read.
func TestVoteWithoutLinkedAccountReadsNoLink(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	res, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove)
	if err != nil || !res.Counted {
		t.Fatalf("vote: %+v %v", res, err)
	}
}

func mustSaveLink(t *testing.T, h *harness, l storage.IdentityLink) {
	t.Helper()
	if err := h.svc.SaveLink(context.Background(), l, ""); err != nil {
		t.Fatal(err)
	}
}
