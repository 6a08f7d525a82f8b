package linkflow_test

// Attacks on the identity binding (docs/architecture.md, "Making a link"),
// written by a security review.
// Tests named TestAttack…Refused are regression tests that pass; the others
// demonstrate a hole and fail until it is fixed (see each test's comment).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// seedLegacyLink stores a link as signoff stored them before bindings were
// proved (MatchedBy empty): here, the result of the forwarded-link attack
// the binding check stops, the chat account p linked to person's identity.
func (e *env) seedLegacyLink(p linkflow.PlatformUser, person testop.User) {
	e.t.Helper()
	now := e.clk.Now()
	if err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: p.Platform, Workspace: p.Workspace, PlatformUser: p.UserID,
		Issuer: e.op.Issuer, Subject: "sub-" + person.Username, Email: person.Email, Name: person.Name,
		Groups: person.Groups, LinkedAt: now, VerifiedAt: now,
	}, ""); err != nil {
		e.t.Fatal(err)
	}
}

// TestAttackLegacyLinkStepUpSkipsRecheck (HOLE, fails today): an older
// link is re-checked only in Resolve. A click on an action with step_up
// goes to BeginStepUp, which reads the link and checks only
// stale/issuer/age, so Mallory's account, linked to Dana's identity by a
// forwarded link before this change, is sent a step-up link instead of
// being made stale; when Dana (asked to "confirm") completes it, the vote
// counts as Dana's through Mallory's account, and completeStepUp stores the
// link again with MatchedBy still empty.
//
// Fix: in Linker.BeginStepUp call l.checkLegacyBinding(ctx, p, link) after
// checkLink (as Resolve does), and in completeStepUp refuse a link whose
// MatchedBy is empty (or run checkLegacyBinding on it) before OnStepUp.
func TestAttackLegacyLinkStepUpSkipsRecheck(t *testing.T) {
	e := newEnv(t)
	e.op.AddUser(mallory)
	attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY"}
	e.own(attacker, mallory)
	e.seedLegacyLink(attacker, dana)

	r := e.create("break-glass")
	u, err := e.linker.BeginStepUp(context.Background(), attacker, r.ID, "approve")
	if err == nil {
		status, body := e.completeAs(u, dana)
		got := e.request(r.ID)
		t.Errorf("BeginStepUp issued a step-up link for an older link whose chat account (mallory@example.com) is not its identity's (dana@example.com); "+
			"completed by Dana: HTTP %d (outcome voted: %v), request %s with votes %+v",
			status, strings.Contains(body, `data-outcome="voted"`), got.State, got.Votes)
		if l := e.mustLink(attacker); !l.Stale {
			t.Errorf("the mismatched older link is still usable after the step-up: stale=%v matched_by=%q", l.Stale, l.MatchedBy)
		}
		return
	}
	asLinkRequired(t, err, linkflow.LinkReasonStale)
	if l := e.mustLink(attacker); !l.Stale {
		t.Fatalf("link = %+v, want stale", l)
	}
}

// TestAttackUncheckedLinkSurvivesSwitchToEmailMatch (HOLE, fails today): a
// link made while idp.link_match was "none" carries MatchedBy "none", and
// checkLegacyBinding re-checks only MatchedBy "". When the operator turns
// the proof on (link_match: email), every link made without proof - e.g.
// Mallory's account completed by Alice through a forwarded link - keeps
// voting as its identity until link_max_age (30 days by default).
//
// Fix: in checkLegacyBinding return early only when
// l.opts.LinkMatch == LinkMatchNone || (link.MatchedBy != "" &&
// link.MatchedBy != MatchedByNone), i.e. treat MatchedByNone like an
// unchecked link whenever the current mode proves bindings.
func TestAttackUncheckedLinkSurvivesSwitchToEmailMatch(t *testing.T) {
	e := newEnv(t, func(o *linkflow.LinkerOptions) { o.LinkMatch = linkflow.LinkMatchNone })
	e.op.AddUser(mallory)
	attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY"}
	e.own(attacker, mallory)
	status, body := e.completeAs(e.begin(attacker), alice)
	wantStatus(t, "forwarded link under link_match: none", status, http.StatusOK, body)
	if l := e.mustLink(attacker); l.Subject != "sub-alice" || l.MatchedBy != linkflow.MatchedByNone {
		t.Fatalf("link = %+v", l)
	}

	// The operator turns the proof on and restarts.
	opts := e.opts
	opts.LinkMatch = linkflow.LinkMatchEmail
	strict, err := linkflow.NewLinker(opts)
	if err != nil {
		t.Fatal(err)
	}
	strict.SetDirectory("slack", e.dir)
	id, err := strict.Resolve(context.Background(), attacker)
	if err == nil {
		t.Errorf("after switching to link_match: email, Mallory's account still resolves to %s (%s) without any check of the binding", id.Email, id.Subject)
		return
	}
	asLinkRequired(t, err, linkflow.LinkReasonStale)
}

// TestAttackFormTokenOfOneLinkDoesNotStartAnotherRefused: the confirmation
// form token of link A (and its cookie) cannot start link B, even in a
// browser that has opened both pages; the csrf cookie is Strict, HttpOnly
// and scoped to /link/.
func TestAttackFormTokenOfOneLinkDoesNotStartAnotherRefused(t *testing.T) {
	e := newEnv(t)
	uA, uB := e.begin(slackU1), e.begin(slackU2)
	idB := mustQuery(t, uB).Get("id")

	b := newBrowser(t)
	_, bodyA := b.get(uA)
	csrfA := confirmCSRFField.FindStringSubmatch(bodyA)[1]
	status, body := b.confirm(uB, url.Values{"id": {idB}, "csrf": {csrfA}})
	wantStatus(t, "B with A's token, B never opened", status, http.StatusForbidden, body)

	b.get(uB) // B's page is open too: its own cookie exists now
	status, body = b.confirm(uB, url.Values{"id": {idB}, "csrf": {csrfA}})
	wantStatus(t, "B with A's token, B opened", status, http.StatusForbidden, body)
	if a, err := e.attempt(uB); err != nil || !a.StartedAt.IsZero() {
		t.Fatalf("link B was started with link A's form token: %+v, %v", a, err)
	}

	// Cookie attributes.
	resp, err := http.Get(uA)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "signoff_confirm_") {
			found = true
			if c.SameSite != http.SameSiteStrictMode || !c.HttpOnly || c.Path != "/link/" {
				t.Errorf("form-token cookie %+v: want SameSite=Strict, HttpOnly, Path=/link/", c)
			}
		}
	}
	if !found {
		t.Fatal("no form-token cookie set")
	}
}

// TestAttackChatNamesOnPagesAreEscapedRefused: a Slack display name, handle
// or workspace name (chosen by the account's owner) cannot inject markup
// into the confirmation page or the refusal page.
func TestAttackChatNamesOnPagesAreEscapedRefused(t *testing.T) {
	e := newEnv(t)
	e.op.AddUser(mallory)
	attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY"}
	e.dir.set(attacker, linkflow.ChatAccount{
		DisplayName:   `<script>alert(1)</script>`,
		Handle:        `"><img src=x onerror=alert(2)>`,
		Email:         `mallory@example.com"><svg onload=alert(3)>`,
		WorkspaceName: `</dd><form action="https://evil.example/"><input name=x></form>`,
	})
	u := e.begin(attacker)
	b := newBrowser(t)
	status, body := b.get(u)
	wantStatus(t, "confirmation", status, http.StatusOK, body)
	status2, body2 := e.completeAs(u, alice)
	wantStatus(t, "refusal", status2, http.StatusForbidden, body2)
	for what, page := range map[string]string{"confirmation": body, "refusal": body2} {
		for _, bad := range []string{"<script", "<img", "<svg", `<form action="https://evil`, "<input name=x"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s page carries injected markup %q", what, bad)
			}
		}
	}
	e.noLink(attacker)
}

// TestAttackRefusedBindingCannotBeReplayedRefused: the IdP's answer to a
// refused binding cannot be presented again (same browser, another
// browser) to get a link.
func TestAttackRefusedBindingCannotBeReplayedRefused(t *testing.T) {
	e := newEnv(t)
	e.op.AddUser(mallory)
	attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY"}
	e.own(attacker, mallory)
	b := e.signInUntilCallback(attacker, alice)
	status, body := b.get(b.callback)
	wantStatus(t, "refused binding", status, http.StatusForbidden, body)

	// Now the directory would say yes (Mallory's profile "changed"); the
	// same answer still links nothing.
	e.own(attacker, alice)
	status, body = b.get(b.callback)
	wantStatus(t, "replayed answer", status, http.StatusNotFound, body)
	status, body = newBrowser(t).get(b.callback)
	if status < 400 || status >= 500 {
		t.Fatalf("replayed answer in another browser: %d\n%s", status, body)
	}
	e.noLink(attacker)
	if n := len(e.refusals()); n != 1 {
		t.Fatalf("%d link_refused records, want 1", n)
	}
}

// TestAttackConcurrentLinksOfOneIdentityRefused: many chat accounts of one
// workspace linking the same identity at once end with exactly one link
// (SaveLink's removal runs in the same serialized transaction).
func TestAttackConcurrentLinksOfOneIdentityRefused(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			errs <- e.svc.SaveLink(context.Background(), storage.IdentityLink{
				Platform: "slack", Workspace: "T1", PlatformUser: fmt.Sprintf("U%02d", i),
				Issuer: e.op.Issuer, Subject: "sub-alice", Email: alice.Email, Groups: alice.Groups,
				LinkedAt: now, VerifiedAt: now, MatchedBy: linkflow.MatchedByEmail,
			}, "")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	links, err := e.svc.Links(context.Background(), storage.LinkFilter{Platform: "slack", Workspace: "T1", Subject: "sub-alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 {
		t.Fatalf("%d chat accounts linked to one identity in one workspace: %+v", len(links), links)
	}
}

// TestAttackOlderTeamsStyleLinkRechecksUPNRefused: an older link of an
// account whose platform record has only a UPN (Teams) is re-checked
// against it too, and a lookup that names no email makes it stale.
func TestAttackOlderTeamsStyleLinkRechecksUPNRefused(t *testing.T) {
	e := newEnv(t)
	teamsAcct := linkflow.PlatformUser{Platform: "teams", Workspace: "tenant-1", UserID: "aad-mallory", Conversation: "19:c@thread.tacv2"}
	e.linker.SetDirectory("teams", e.dir)
	e.dir.set(teamsAcct, linkflow.ChatAccount{UPN: "mallory@example.com", ObjectID: "aad-mallory"})
	e.seedLegacyLink(teamsAcct, alice)
	_, err := e.resolve(teamsAcct)
	asLinkRequired(t, err, linkflow.LinkReasonStale)

	noEmail := linkflow.PlatformUser{Platform: "teams", Workspace: "tenant-1", UserID: "aad-nomail", Conversation: "19:c@thread.tacv2"}
	e.dir.set(noEmail, linkflow.ChatAccount{ObjectID: "aad-nomail"})
	e.seedLegacyLink(noEmail, bob)
	_, err = e.resolve(noEmail)
	asLinkRequired(t, err, linkflow.LinkReasonStale)
}

// TestAttackUnlinkedClickFloodIsBoundedRefused: a hundred clicks from an
// unlinked account store at most SignInLinksPerMinute attempts and about
// CallbackRejectedPerMinute vote.rejected records.
func TestAttackUnlinkedClickFloodIsBoundedRefused(t *testing.T) {
	e := newEnv(t)
	e.op.AddUser(mallory)
	attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY"}
	r := e.create("deploy")
	before := len(e.records())
	urls := map[string]bool{}
	for range 100 {
		_, err := e.resolve(attacker)
		var lr *linkflow.LinkRequiredError
		if !errors.As(err, &lr) {
			t.Fatalf("Resolve = %v", err)
		}
		if lr.URL != "" {
			urls[lr.URL] = true
		}
		if err := e.svc.RecordUnverifiedVote(context.Background(), approvals.UnverifiedVote{
			RequestID: r.ID, Decision: storage.DecisionApprove, Reason: approvals.ReasonNotLinked, Message: lr.Message,
			Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "UMALLORY", CallbackID: "cb"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(urls) > linkflow.DefaultSignInLinksPerMinute {
		t.Errorf("%d sign-in attempts stored for 100 clicks", len(urls))
	}
	var rejected int
	for _, rec := range e.records()[before:] {
		if rec.Type == audit.TypeVoteRejected {
			rejected++
		}
	}
	if rejected > approvals.CallbackRejectedPerMinute {
		t.Errorf("%d vote.rejected records for 100 clicks", rejected)
	}
}

// TestAttackArrayPersonClaimEvadesSelfApproval (GAP, fails today): an IdP
// that keeps the CI handle in a multi-valued attribute (Okta string-array
// attributes, Entra multi-valued extension attributes, Keycloak
// multivalued user attributes) sends it as a JSON array; readClaims keeps
// only string values of idp.person_claims and drops arrays silently, so
// the requester approves their own request although the operator listed
// the claim.
//
// Fix: in idpClient.readClaims read person claims with stringList (as the
// groups are) and keep every value (e.g. PersonClaims map[string][]string,
// or keys "name", "name#1", …), so IsSelf compares each; config check
// cannot see this, so at least log a warning when a listed claim arrives
// with a non-string type.
func TestAttackArrayPersonClaimEvadesSelfApproval(t *testing.T) {
	e, _, r, id := linkOcho(t, []any{"OctoCat"})
	res, err := e.vote(slackU1, id, r.ID)
	if !errors.Is(err, approvals.ErrSelfApproval) {
		t.Errorf("the requester (github_login [\"OctoCat\"] at the IdP) voted on their own request: counted=%v err=%v person_claims=%v", res.Counted, err, id.PersonClaims)
	}
}
