package linkflow_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// The promise these tests attack: a vote through a chat account counts
// as the person it is linked to only while that account is still theirs.
// A chat account an administrator hands to someone else (its email
// changed to theirs) must stop voting as the person who linked it, at
// the latest when the link's groups come due again, whether a click or
// the sweep gets there first, and without spending the refresh token.

// handOver gives the chat account p to mallory at the chat platform: same
// account id, mallory's email.
func (e *env) handOver(p linkflow.PlatformUser) {
	e.op.AddUser(mallory)
	e.own(p, mallory)
}

func TestClickAfterTheChatAccountChangedHandsIsRefused(t *testing.T) {
	e := newLinkedEnv(t)
	e.handOver(slackU1)

	// Within GroupsMaxAge the link stands as linked (the bound of this
	// check) and no lookup is made per click.
	lookups := e.dir.lookups
	if _, err := e.resolve(slackU1); err != nil {
		t.Fatalf("click within groups_max_age: %v", err)
	}
	if e.dir.lookups != lookups {
		t.Fatal("a click within groups_max_age asked the chat platform")
	}

	e.clk.Advance(25 * time.Hour)
	refreshes := e.op.Refreshes()
	_, err := e.resolve(slackU1)
	asLinkRequired(t, err, linkflow.LinkReasonStale)
	if !strings.Contains(err.Error(), "does not match the identity it was linked to") {
		t.Fatalf("refusal = %v", err)
	}
	if e.op.Refreshes() != refreshes {
		t.Fatal("the refresh token was spent on a link that no longer holds")
	}
	l := e.mustLink(slackU1)
	if !l.Stale || !strings.Contains(l.StaleReason, "does not match the linked identity") || strings.Contains(l.StaleReason, "@") {
		t.Fatalf("link = %+v, want stale without an address in its reason", l)
	}
	if !strings.Contains(strings.Join(e.auditTypes(), " "), approvals.TypeIdentityStale) {
		t.Fatalf("audit %v lacks %s", e.auditTypes(), approvals.TypeIdentityStale)
	}
	if n := e.linker.Metrics().MarkedStale[linkflow.StaleBindingMismatch]; n != 1 {
		t.Fatalf("marked stale for a binding mismatch: %d, want 1", n)
	}
	// The next click is refused as any stale link is, with a sign-in link.
	_, err = e.resolve(slackU1)
	asLinkRequired(t, err, linkflow.LinkReasonStale)
}

func TestSweepFindsAChatAccountThatChangedHands(t *testing.T) {
	e := newLinkedEnv(t)
	e.handOver(slackU1)
	e.clk.Advance(25 * time.Hour)
	refreshes := e.op.Refreshes()
	if res := e.mustSweep(); res.Due != 1 || res.MarkedStale != 1 || res.Refreshed != 0 {
		t.Fatalf("sweep = %+v, want the link marked stale", res)
	}
	if e.op.Refreshes() != refreshes {
		t.Fatal("the sweep spent the refresh token of a link that no longer holds")
	}
	if l := e.mustLink(slackU1); !l.Stale {
		t.Fatalf("link = %+v, want stale", l)
	}
}

func TestRecheckLookupFailureChangesNothing(t *testing.T) {
	e := newLinkedEnv(t)
	before := e.mustLink(slackU1)
	e.clk.Advance(25 * time.Hour)
	e.dir.fail(fmt.Errorf("users.info: HTTP 503: %w", linkflow.ErrDirectoryUnavailable))
	refreshes := e.op.Refreshes()

	// A click is refused for now (fail closed), nothing is marked.
	if _, err := e.resolve(slackU1); !errors.Is(err, linkflow.ErrDirectoryUnavailable) {
		t.Fatalf("Resolve = %v, want ErrDirectoryUnavailable", err)
	}
	// The sweep stops (the platform is down for every link), leaves the
	// link for a later pass and backs off as for an unavailable IdP.
	if res, err := e.sweep(); !errors.Is(err, linkflow.ErrDirectoryUnavailable) || res.NotTried != 1 || res.MarkedStale != 0 {
		t.Fatalf("sweep = %+v, %v; want stopped, the link not tried", res, err)
	}
	if n := e.linker.Metrics().Sweeps[linkflow.SweepChatUnavailable]; n != 1 {
		t.Fatalf("sweeps stopped for the chat platform: %d, want 1", n)
	}
	l := e.mustLink(slackU1)
	if l.Stale || !l.VerifiedAt.Equal(before.VerifiedAt) || e.op.Refreshes() != refreshes {
		t.Fatalf("a failed lookup changed the link or spent its token: %+v (refreshes %d → %d)", l, refreshes, e.op.Refreshes())
	}

	// Once the platform answers (still alice's account), the click goes
	// through and refreshes the groups.
	e.dir.fail(nil)
	if _, err := e.resolve(slackU1); err != nil {
		t.Fatalf("Resolve after the platform is back: %v", err)
	}
	if l := e.mustLink(slackU1); l.Stale || !l.VerifiedAt.Equal(e.clk.Now()) || e.op.Refreshes() != refreshes+1 {
		t.Fatalf("link = %+v (refreshes %d → %d), want refreshed", l, refreshes, e.op.Refreshes())
	}
}

// A step-up sign-in is the linked person's own, but the vote still comes
// from the chat account: handed to someone else, it counts nothing, even
// when the linked person completes the sign-in (tricked into opening the
// link, or colluding), and its link turns stale.
func TestStepUpFromAChatAccountThatChangedHandsIsRefused(t *testing.T) {
	e := newEnv(t)
	r, b := stepUpSetup(t, e, "break-glass")
	e.handOver(slackU1)
	u := e.beginStepUp(slackU1, r.ID, "approve")
	b.open(u)
	status, body := b.login(dana.Username, dana.Password, dana.OTP)
	wantAnswer(t, "step-up from a handed-over account", status, http.StatusForbidden, body, "not counted", "does not match the identity it was linked to")
	if got := e.request(r.ID); len(got.Votes) != 0 || got.State != storage.StatePending {
		t.Fatalf("request after the refused step-up: %s, votes %+v", got.State, got.Votes)
	}
	if l := e.mustLink(slackU1); !l.Stale {
		t.Fatalf("link = %+v, want stale", l)
	}
}
