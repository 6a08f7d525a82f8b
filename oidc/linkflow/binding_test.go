package linkflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// mallory is a workspace member who is no approver.
var mallory = testop.User{Username: "mallory", Password: "mallory-pw", Email: "mallory@example.com", Name: "Mallory"}

// completeAs opens the sign-in link u in a fresh browser and signs in as
// person, returning the final page.
func (e *env) completeAs(u string, person testop.User) (int, string) {
	e.t.Helper()
	b := newBrowser(e.t)
	b.open(u)
	return b.login(person.Username, person.Password, person.OTP)
}

// refusals returns the identity.link_refused records.
func (e *env) refusals() []audit.Record {
	var out []audit.Record
	for _, r := range e.records() {
		if r.Type == audit.TypeIdentityLinkRefused {
			out = append(out, r)
		}
	}
	return out
}

// notices returns the texts queued for the chat account p.
func (e *env) notices(p linkflow.PlatformUser) []approvals.AccountNotice {
	e.t.Helper()
	var out []approvals.AccountNotice
	for _, en := range testenv.DueOutbox(e.t, e.store, approvals.KindNoticePrefix+p.Platform) {
		var n approvals.AccountNotice
		if err := json.Unmarshal(en.Payload, &n); err != nil {
			e.t.Fatal(err)
		}
		if n.User == p.UserID && n.Workspace == p.Workspace {
			out = append(out, n)
		}
	}
	return out
}

// TestForwardedLinkDoesNotBindAnotherPerson is the attack: a workspace
// member who is no approver forwards the sign-in link of their own chat
// account to an approver, who opens it and signs in. The member's account
// must not end up voting as the approver; the approver's own account
// still links and votes.
func TestForwardedLinkDoesNotBindAnotherPerson(t *testing.T) {
	e := newEnv(t)
	e.op.AddUser(mallory)
	attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY", Conversation: "C1"}
	e.own(attacker, mallory)

	// Mallory clicks Approve: not linked, so a sign-in link for her account.
	_, err := e.resolve(attacker)
	lr := asLinkRequired(t, err, linkflow.LinkReasonNotLinked)

	// Alice (an approver) opens it and signs in as herself.
	status, body := e.completeAs(lr.URL, alice)
	wantStatus(t, "forwarded link completed by alice", status, http.StatusForbidden, body)
	wantPage(t, "refusal page", body, `data-outcome="refused"`, "Mallory (@mallory, UMALLORY)", "alice@example.com", "mallory@example.com", "is not the email of the identity that signed in")
	e.noLink(attacker)

	// Mallory's next click counts nothing: she is still not linked.
	r := e.create("deploy")
	_, err = e.resolve(attacker)
	asLinkRequired(t, err, linkflow.LinkReasonNotLinked)
	if got := e.request(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes after the refused link: %+v", got.Votes)
	}

	// The audit log names both sides and holds no token.
	refused := e.refusals()
	if len(refused) != 1 {
		t.Fatalf("identity.link_refused records: %d, want 1 (%v)", len(refused), e.auditTypes())
	}
	rec := refused[0]
	if rec.Actor.PlatformUser != "UMALLORY" || rec.Actor.Workspace != "T1" || rec.Actor.Subject != "sub-alice" || rec.Actor.Email != "alice@example.com" ||
		rec.Data["reason"] != string(linkflow.RefusalMismatch) || rec.Data["chat_email"] != "mallory@example.com" {
		t.Fatalf("refusal record = %+v", rec)
	}
	// The owner of the chat account is told.
	if ns := e.notices(attacker); len(ns) != 1 || !strings.Contains(ns[0].Text, "refused") || ns[0].Conversation != "C1" {
		t.Fatalf("notices to the attacker's account: %+v", ns)
	}

	// Alice's own account still links and votes.
	e.linkAs(slackU1, alice)
	id, err := e.resolve(slackU1)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.vote(slackU1, id, r.ID); err != nil || !res.Counted {
		t.Fatalf("alice's own vote: %+v, %v", res, err)
	}
	if l := e.mustLink(slackU1); l.MatchedBy != linkflow.MatchedByEmail {
		t.Fatalf("alice's link matched_by = %q", l.MatchedBy)
	}
	if ns := e.notices(slackU1); len(ns) != 1 || !strings.Contains(ns[0].Text, "now linked to alice@example.com") {
		t.Fatalf("notices to alice's account: %+v", ns)
	}
}

// TestEmailComparison tries the edges of the email proof.
func TestEmailComparison(t *testing.T) {
	no := false
	yes := true
	cases := []struct {
		name    string
		chat    linkflow.ChatAccount
		user    testop.User
		linked  bool
		reason  string
		fragmnt string
	}{
		{"case and whitespace", linkflow.ChatAccount{Email: "  Alice@Example.COM "}, alice, true, "", ""},
		{"UPN only", linkflow.ChatAccount{UPN: "alice@example.com"}, alice, true, "", ""},
		{"email_verified true", linkflow.ChatAccount{Email: "alice@example.com"}, withVerified(alice, &yes), true, "", ""},
		{"email_verified false", linkflow.ChatAccount{Email: "alice@example.com"}, withVerified(alice, &no), false, string(linkflow.RefusalEmailUnverif), "not verified"},
		// An IdP that does not say (Microsoft Entra ID) proves nothing by
		// default; Entra's xms_edov stands in for email_verified only
		// when that is absent.
		{"no email_verified claim", linkflow.ChatAccount{Email: "alice@example.com"}, withoutVerified(alice, nil), false, string(linkflow.RefusalEmailUnverif), "does not say that the email"},
		{"no email_verified, xms_edov true", linkflow.ChatAccount{Email: "alice@example.com"}, withoutVerified(alice, true), true, "", ""},
		{"no email_verified, xms_edov \"true\"", linkflow.ChatAccount{Email: "alice@example.com"}, withoutVerified(alice, "true"), true, "", ""},
		{"no email_verified, xms_edov false", linkflow.ChatAccount{Email: "alice@example.com"}, withoutVerified(alice, false), false, string(linkflow.RefusalEmailUnverif), "not verified"},
		{"no email_verified, xms_edov garbled", linkflow.ChatAccount{Email: "alice@example.com"}, withoutVerified(alice, "yes please"), false, string(linkflow.RefusalEmailUnverif), "does not say"},
		{"email_verified false beats xms_edov true", linkflow.ChatAccount{Email: "alice@example.com"}, withEdov(withVerified(alice, &no), true), false, string(linkflow.RefusalEmailUnverif), "not verified"},
		{"no email on the chat side", linkflow.ChatAccount{DisplayName: "Alice"}, alice, false, string(linkflow.RefusalNoChatEmail), "has no email"},
		{"no email at the IdP", linkflow.ChatAccount{Email: "noemail@example.com"}, testop.User{Username: "noemail", Password: "pw", Name: "No Email", Groups: []string{"sre"}}, false, string(linkflow.RefusalNoIdPEmail), "sent no email"},
		{"a prefix is not a match", linkflow.ChatAccount{Email: "alice@example.com.evil"}, alice, false, string(linkflow.RefusalMismatch), "is not the email"},
		{"no Unicode case folding", linkflow.ChatAccount{Email: "alice@example.com"}, withEmail(alice, "alice@exampLe.co\u1E3E"), false, string(linkflow.RefusalMismatch), "is not the email"},
		{"Kelvin sign is not k", linkflow.ChatAccount{Email: "kate@example.com"}, withEmail(testop.User{Username: "kelvin", Password: "pw", Groups: []string{"sre"}}, "\u212Aate@example.com"), false, string(linkflow.RefusalMismatch), "is not the email"},
		{"no @ is no email", linkflow.ChatAccount{Email: "alice"}, alice, false, string(linkflow.RefusalNoChatEmail), "has no email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.op.AddUser(tc.user)
			e.dir.set(slackU1, tc.chat)
			status, body := e.completeAs(e.begin(slackU1), tc.user)
			if tc.linked {
				wantStatus(t, "link", status, http.StatusOK, body)
				e.mustLink(slackU1)
				return
			}
			wantStatus(t, "link", status, http.StatusForbidden, body)
			wantPage(t, "refusal", body, tc.fragmnt)
			e.noLink(slackU1)
			if rs := e.refusals(); len(rs) != 1 || rs[0].Data["reason"] != tc.reason {
				t.Fatalf("refusal records %+v, want reason %s", rs, tc.reason)
			}
		})
	}
}

func withEmail(u testop.User, email string) testop.User {
	u.Email = email
	return u
}

func withVerified(u testop.User, v *bool) testop.User {
	u.EmailVerified = v
	return u
}

// withoutVerified is u at an IdP that sends no email_verified claim, and
// Entra ID's xms_edov claim as edov unless that is nil.
func withoutVerified(u testop.User, edov any) testop.User {
	u.NoEmailVerified = true
	if edov != nil {
		u = withEdov(u, edov)
	}
	return u
}

func withEdov(u testop.User, edov any) testop.User {
	u.Extra = maps.Clone(u.Extra)
	if u.Extra == nil {
		u.Extra = map[string]any{}
	}
	u.Extra["xms_edov"] = edov
	return u
}

// TestAssumedEmailVerification: with idp.email_verified: assumed an email
// the IdP marks neither way proves the binding; one it marks unverified
// still does not.
func TestAssumedEmailVerification(t *testing.T) {
	no := false
	assume := func(o *linkflow.LinkerOptions) { o.AssumeEmailVerified = true }
	e := newEnv(t, assume)
	e.op.AddUser(withoutVerified(erin, nil))
	e.own(slackU2, erin)
	status, body := e.completeAs(e.begin(slackU2), erin)
	wantStatus(t, "link without email_verified, assumed", status, http.StatusOK, body)
	if l := e.mustLink(slackU2); l.MatchedBy != linkflow.MatchedByEmail {
		t.Fatalf("link = %+v", l)
	}

	e = newEnv(t, assume)
	e.op.AddUser(withVerified(erin, &no))
	e.own(slackU2, erin)
	status, body = e.completeAs(e.begin(slackU2), erin)
	wantStatus(t, "link with email_verified false, assumed", status, http.StatusForbidden, body)
	e.noLink(slackU2)
}

// TestLookupFailureLinksNothing: when the chat platform cannot be asked
// (429, 5xx, network), nothing is linked; the person is told to retry.
func TestLookupFailureLinksNothing(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("users.info: slack rate limit exceeded, retry after 30s: %w", linkflow.ErrDirectoryUnavailable),
		fmt.Errorf("members: HTTP 502: %w", linkflow.ErrDirectoryUnavailable),
		errors.New("users.info: missing_scope (users:read.email)"),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			e := newEnv(t)
			e.dir.fail(err)
			status, body := e.completeAs(e.begin(slackU1), alice)
			wantStatus(t, "link while the lookup fails", status, http.StatusServiceUnavailable, body)
			wantPage(t, "lookup failure", body, "could not ask Slack", "Wait a minute")
			e.noLink(slackU1)
			if rs := e.refusals(); len(rs) != 1 || rs[0].Data["reason"] != string(linkflow.RefusalLookupFailed) {
				t.Fatalf("refusal records %+v", rs)
			}
			// Once the platform answers again, a new link works.
			e.dir.fail(nil)
			e.linkAs(slackU1, alice)
		})
	}
	for _, tc := range []struct {
		name, what string
		account    linkflow.PlatformUser
	}{
		{"unknown account", "link of an account the platform does not know", linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UGHOST"}},
		{"no directory for the platform", "link on a platform without a directory", linkflow.PlatformUser{Platform: "teams", Workspace: "tenant-1", UserID: "obj-alice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			status, body := e.completeAs(e.begin(tc.account), alice)
			wantStatus(t, tc.what, status, http.StatusForbidden, body)
			e.noLink(tc.account)
		})
	}
}

// TestEntraObjectID: with an oid claim (Entra ID) the Teams account's
// object id decides, whatever the emails say.
func TestEntraObjectID(t *testing.T) {
	teamsAlice := linkflow.PlatformUser{Platform: "teams", Workspace: "tenant-1", UserID: "obj-alice", Conversation: "19:c@thread.tacv2"}
	entraAlice := alice
	entraAlice.Username, entraAlice.ID = "entra-alice", "sub-entra-alice"
	entraAlice.Extra = map[string]any{"oid": "OBJ-ALICE"}

	t.Run("oid matches", func(t *testing.T) {
		e := newEnv(t)
		e.linker.SetDirectory("teams", e.dir)
		e.op.AddUser(entraAlice)
		e.dir.set(teamsAlice, linkflow.ChatAccount{ObjectID: "obj-alice", Email: "someone-else@example.com"})
		status, body := e.completeAs(e.begin(teamsAlice), entraAlice)
		wantStatus(t, "link by oid", status, http.StatusOK, body)
		if l := e.mustLink(teamsAlice); l.MatchedBy != linkflow.MatchedByOID {
			t.Fatalf("matched_by = %q", l.MatchedBy)
		}
	})
	t.Run("oid differs though the emails match", func(t *testing.T) {
		e := newEnv(t)
		e.linker.SetDirectory("teams", e.dir)
		e.op.AddUser(entraAlice)
		e.dir.set(teamsAlice, linkflow.ChatAccount{ObjectID: "obj-mallory", Email: "alice@example.com", UPN: "alice@example.com"})
		status, body := e.completeAs(e.begin(teamsAlice), entraAlice)
		wantStatus(t, "link with another oid", status, http.StatusForbidden, body)
		wantPage(t, "oid refusal", body, "object id")
		e.noLink(teamsAlice)
	})
	t.Run("no oid: email or UPN", func(t *testing.T) {
		e := newEnv(t)
		e.linker.SetDirectory("teams", e.dir)
		e.dir.set(teamsAlice, linkflow.ChatAccount{ObjectID: "obj-alice", UPN: "ALICE@example.com"})
		status, body := e.completeAs(e.begin(teamsAlice), alice)
		wantStatus(t, "link by UPN", status, http.StatusOK, body)
	})
}

// TestLinkMatchNone: the explicit opt-out links whoever signs in, without
// asking the platform, and says so loudly.
func TestLinkMatchNone(t *testing.T) {
	e := newEnv(t, func(o *linkflow.LinkerOptions) { o.LinkMatch = linkflow.LinkMatchNone })
	e.dir.set(slackU1, linkflow.ChatAccount{Email: "mallory@example.com"})
	status, body := e.completeAs(e.begin(slackU1), alice)
	wantStatus(t, "link without proof", status, http.StatusOK, body)
	if l := e.mustLink(slackU1); l.MatchedBy != linkflow.MatchedByNone {
		t.Fatalf("matched_by = %q", l.MatchedBy)
	}
	if !strings.Contains(e.logs.String(), "idp.link_match is none") {
		t.Fatal("no warning about link_match: none in the log")
	}
}

// TestOlderLinksAreRechecked: a link saved before bindings were proved is
// checked at its next use: the chat account's email against the link's.
func TestOlderLinksAreRechecked(t *testing.T) {
	seed := func(e *env, p linkflow.PlatformUser, email string) {
		now := e.clk.Now()
		if err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
			Platform: p.Platform, Workspace: p.Workspace, PlatformUser: p.UserID,
			Issuer: e.op.Issuer, Subject: "sub-alice", Email: email, Groups: []string{"sre"},
			LinkedAt: now, VerifiedAt: now,
		}, ""); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("mismatch turns stale", func(t *testing.T) {
		e := newEnv(t)
		e.op.AddUser(mallory)
		attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY"}
		e.own(attacker, mallory)
		seed(e, attacker, "alice@example.com") // made through a forwarded link
		_, err := e.resolve(attacker)
		asLinkRequired(t, err, linkflow.LinkReasonStale)
		if l := e.mustLink(attacker); !l.Stale || !strings.Contains(l.StaleReason, "does not match the linked identity") || strings.Contains(l.StaleReason, "@") {
			t.Fatalf("link = %+v, want stale", l)
		}
		if !strings.Contains(strings.Join(e.auditTypes(), " "), approvals.TypeIdentityStale) {
			t.Fatalf("audit %v lacks %s", e.auditTypes(), approvals.TypeIdentityStale)
		}
	})
	t.Run("match is recorded", func(t *testing.T) {
		e := newEnv(t)
		seed(e, slackU1, "alice@example.com")
		if _, err := e.resolve(slackU1); err != nil {
			t.Fatal(err)
		}
		if l := e.mustLink(slackU1); l.MatchedBy != linkflow.MatchedByEmail || l.Stale {
			t.Fatalf("link = %+v", l)
		}
		before := e.dir.lookups
		if _, err := e.resolve(slackU1); err != nil {
			t.Fatal(err)
		}
		if e.dir.lookups != before {
			t.Fatal("a confirmed link is looked up again on every click")
		}
	})
	t.Run("lookup failure refuses for now", func(t *testing.T) {
		e := newEnv(t)
		seed(e, slackU1, "alice@example.com")
		e.dir.fail(fmt.Errorf("users.info: HTTP 503: %w", linkflow.ErrDirectoryUnavailable))
		_, err := e.resolve(slackU1)
		if !errors.Is(err, linkflow.ErrDirectoryUnavailable) {
			t.Fatalf("Resolve = %v, want ErrDirectoryUnavailable", err)
		}
		if l := e.mustLink(slackU1); l.Stale || l.MatchedBy != "" {
			t.Fatalf("a failed lookup changed the link: %+v", l)
		}
	})
}

// TestOneChatAccountPerIdentity: a second chat account in the same
// workspace linking the same identity replaces the first, audited; in
// another workspace both stay.
func TestOneChatAccountPerIdentity(t *testing.T) {
	e := newLinkedEnv(t)
	e.linkAs(slackU2, alice)
	e.noLink(slackU1)
	e.mustLink(slackU2)
	var replaced *audit.Record
	for _, r := range e.records() {
		if r.Type == audit.TypeIdentityUnlinked && r.Actor.PlatformUser == "U1" {
			replaced = &r
		}
	}
	if replaced == nil || replaced.Data["replaced_by"] != "U2" || replaced.Actor.Subject != "sub-alice" {
		t.Fatalf("no identity.unlinked record for the replaced account: %v", e.auditTypes())
	}
	if ns := e.notices(slackU1); len(ns) != 2 || !strings.Contains(ns[1].Text, "no longer linked") {
		t.Fatalf("notices to the replaced account: %+v", ns)
	}

	other := linkflow.PlatformUser{Platform: "slack", Workspace: "T2", UserID: "U1"}
	e.linkAs(other, alice)
	e.mustLink(slackU2)
	e.mustLink(other)
}

// TestConfirmationPage: opening a link shows whose chat account it is for
// and changes nothing; only the page's own Continue starts the sign-in.
func TestConfirmationPage(t *testing.T) {
	e := newEnv(t)
	u := e.begin(slackU1)
	b := newBrowser(t)
	for range 3 { // a link preview, a checker, the person
		status, body := b.get(u)
		wantAnswer(t, "confirmation", status, http.StatusOK, body, `data-outcome="confirm"`, "Alice (@alice, U1) in T1", `method="post"`, "Continue")
	}
	a, err := e.attempt(u)
	if err != nil || !a.StartedAt.IsZero() {
		t.Fatalf("GET touched the attempt: %+v, %v", a, err)
	}

	_, body := b.get(u)
	id, csrf := confirmIDField.FindStringSubmatch(body)[1], confirmCSRFField.FindStringSubmatch(body)[1]
	attacks := []struct {
		name string
		b    *browser
		vals url.Values
		hdr  map[string]string
	}{
		{"no form token cookie (another browser)", newBrowser(t), url.Values{"id": {id}, "csrf": {csrf}}, nil},
		{"wrong form token", b, url.Values{"id": {id}, "csrf": {strings.Repeat("A", 43)}}, nil},
		{"no form token", b, url.Values{"id": {id}}, nil},
		{"cross-site post", b, url.Values{"id": {id}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"foreign origin", b, url.Values{"id": {id}, "csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}},
	}
	for _, at := range attacks {
		target, _ := url.Parse(u)
		target.RawQuery = ""
		req, _ := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(at.vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range at.hdr {
			req.Header.Set(k, v)
		}
		status, body := at.b.do(req)
		wantStatus(t, at.name, status, http.StatusForbidden, body)
		if a, err := e.attempt(u); err != nil || !a.StartedAt.IsZero() {
			t.Fatalf("%s started the sign-in: %+v, %v", at.name, a, err)
		}
	}
	// The genuine press still works.
	b.open(u)
	status, body := b.login(alice.Username, alice.Password, "")
	wantStatus(t, "link after the refused posts", status, http.StatusOK, body)
}

// TestSignInLinksAreRateLimited: a chat account gets a few sign-in links a
// minute; a click flood gets no more stored attempts.
func TestSignInLinksAreRateLimited(t *testing.T) {
	e := newEnv(t)
	for i := range linkflow.DefaultSignInLinksPerMinute {
		if _, err := e.linker.Begin(context.Background(), slackU1); err != nil {
			t.Fatalf("link %d: %v", i+1, err)
		}
	}
	_, err := e.linker.Begin(context.Background(), slackU1)
	var lr *linkflow.LinkRequiredError
	if !errors.As(err, &lr) || lr.Reason != linkflow.LinkReasonRateLimited || lr.URL != "" {
		t.Fatalf("Begin over the limit = %v", err)
	}
	_, err = e.resolve(slackU1)
	if !errors.As(err, &lr) || lr.URL != "" || !strings.Contains(lr.Message, "use the latest one") {
		t.Fatalf("Resolve over the limit = %v (%+v)", err, lr)
	}
	// Another account is not affected; after a while the account gets a
	// link again.
	if _, err := e.linker.Begin(context.Background(), slackU2); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute / time.Duration(linkflow.DefaultSignInLinksPerMinute))
	if _, err := e.linker.Begin(context.Background(), slackU1); err != nil {
		t.Fatalf("link after waiting: %v", err)
	}
}

// TestSelfApprovalThroughPersonClaims: a requester whose CI login lives in
// a custom IdP claim cannot approve their own request.
func TestSelfApprovalThroughPersonClaims(t *testing.T) {
	e, octo, r, id := linkOcho(t, "OctoCat")
	if !slices.Equal(id.PersonClaims["github_login"], []string{"OctoCat"}) {
		t.Fatalf("identity person claims = %v", id.PersonClaims)
	}
	_, err := e.vote(slackU1, id, r.ID)
	if !errors.Is(err, approvals.ErrSelfApproval) {
		t.Fatalf("vote by the requester = %v, want ErrSelfApproval", err)
	}

	// Without that claim configured the same person is not recognized:
	// the claim is what makes the check work.
	e2 := newEnv(t, func(o *linkflow.LinkerOptions) { o.PersonClaims = []string{} })
	e2.op.AddUser(octo)
	e2.linkAs(slackU1, octo)
	r2 := e2.create("deploy")
	id2, err := e2.resolve(slackU1)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e2.vote(slackU1, id2, r2.ID); err != nil || !res.Counted {
		t.Fatalf("vote without person_claims: %+v, %v", res, err)
	}
}

// TestConfirmationPageLookupsAreBounded: fetching a link again and again
// (a preview crawler, a reload loop) does not make signoff ask the chat
// platform each time; the binding check after the sign-in still asks.
func TestConfirmationPageLookupsAreBounded(t *testing.T) {
	e := newEnv(t)
	u := e.begin(slackU1)
	b := newBrowser(t)
	for range 20 {
		if status, body := b.get(u); status != http.StatusOK {
			t.Fatalf("confirmation: %d\n%s", status, body)
		}
	}
	if e.dir.lookups != 1 {
		t.Fatalf("%d lookups for 20 page views, want 1", e.dir.lookups)
	}
	e.clk.Advance(2 * time.Minute)
	b.get(u)
	if e.dir.lookups != 2 {
		t.Fatalf("%d lookups after the cache expired, want 2", e.dir.lookups)
	}
	b.open(u)
	status, body := b.login(alice.Username, alice.Password, "")
	wantStatus(t, "link", status, http.StatusOK, body)
	if e.dir.lookups != 3 {
		t.Fatalf("%d lookups, want the binding check to ask afresh (3)", e.dir.lookups)
	}
}
