package linkflow_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// stepUpSetup links dana (with MFA) to U1, lets her sign-in age past the
// action's max_age, and shows that a plain click on a break-glass request
// is refused for want of a fresh sign-in.
func stepUpSetup(t *testing.T, e *env, action string) (storage.Request, *browser) {
	t.Helper()
	b := e.linkAs(slackU1, dana)
	e.clk.Advance(11 * time.Minute)
	r := e.create(action)
	id, err := e.resolve(slackU1)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if _, err := e.vote(slackU1, id, r.ID); !errors.Is(err, approvals.ErrStepUpRequired) {
		t.Fatalf("plain click on %s: %v, want ErrStepUpRequired", action, err)
	}
	return r, b
}

func (e *env) beginStepUp(p linkflow.PlatformUser, requestID, decision string) string {
	e.t.Helper()
	u, err := e.linker.BeginStepUp(context.Background(), p, requestID, decision)
	if err != nil {
		e.t.Fatalf("BeginStepUp: %v", err)
	}
	return u
}

func (e *env) request(id string) storage.Request {
	e.t.Helper()
	return chattest.Get(e.t, e.svc, id)
}

// TestStepUpVoteCounts: the one-time sign-in URL asks the IdP for a fresh
// login; with MFA the vote counts and its audit record holds auth_time and
// amr.
func TestStepUpVoteCounts(t *testing.T) {
	e := newEnv(t)
	r, b := stepUpSetup(t, e, "break-glass")
	u := e.beginStepUp(slackU1, r.ID, "approve")

	// The browser still has an SSO session at the IdP, yet the IdP shows
	// its login form: signoff asked for prompt=login.
	b.open(u)
	status, body := b.login(dana.Username, dana.Password, dana.OTP)
	wantAnswer(t, "step-up", status, http.StatusOK, body, `data-outcome="voted"`, "Vote recorded", "counted", r.ID)

	if got := e.request(r.ID); got.State != storage.StateApproved || len(got.Votes) != 1 || got.Votes[0].Approver.Subject != "sub-dana" {
		t.Fatalf("request after step-up = %s, votes %+v", got.State, got.Votes)
	}
	var vote *audit.Record
	recs := e.records()
	for i := range recs {
		if recs[i].Type == "vote.approve" {
			vote = &recs[i]
		}
	}
	if vote == nil {
		t.Fatalf("no vote.approve record: %v", e.auditTypes())
	}
	if vote.Data["auth_time"] != audit.FormatTime(e.clk.Now()) {
		t.Errorf("vote auth_time = %v, want %s", vote.Data["auth_time"], audit.FormatTime(e.clk.Now()))
	}
	if amr, _ := vote.Data["amr"].([]any); !slices.Contains(amr, any("mfa")) {
		t.Errorf("vote amr = %v", vote.Data["amr"])
	}
	if vote.Actor.PlatformUser != "U1" || vote.Actor.Subject != "sub-dana" {
		t.Errorf("vote actor = %+v", vote.Actor)
	}
	// The link now records that sign-in.
	if l := e.mustLink(slackU1); !l.AuthTime.Equal(e.clk.Now()) || !slices.Contains(l.AMR, "mfa") {
		t.Errorf("link auth_time %v amr %v", l.AuthTime, l.AMR)
	}

	// Single use.
	status, body = newBrowser(t).get(u)
	wantStatus(t, "reused step-up URL", status, http.StatusNotFound, body)
	status, body = b.get(u)
	wantStatus(t, "reused step-up URL in the same browser", status, http.StatusNotFound, body)
}

// TestStepUpAsksForFreshLogin: the authorization request carries
// prompt=login, the action's max_age and acr_values, PKCE S256 and a nonce.
func TestStepUpAsksForFreshLogin(t *testing.T) {
	e := newEnv(t)
	e.linkAs(slackU1, dana)
	for _, tc := range []struct {
		action string
		want   url.Values
	}{
		{"break-glass", url.Values{"prompt": {"login"}, "max_age": {"300"}}},
		{"drop-table", url.Values{"prompt": {"login"}, "max_age": {"600"}, "acr_values": {testop.ACRMFA}}},
	} {
		r := e.create(tc.action)
		b := newBrowser(t)
		b.stopAtIdP = true
		status, body := b.start(e.beginStepUp(slackU1, r.ID, "approve"))
		wantStatus(t, "step-up start", status, http.StatusFound, body)
		q := mustQuery(t, b.idpURL)
		for k, v := range tc.want {
			if q.Get(k) != v[0] {
				t.Errorf("%s: %s = %q, want %q (URL %s)", tc.action, k, q.Get(k), v[0], b.idpURL)
			}
		}
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("client_id") != testop.ClientID {
			t.Errorf("%s: authorization request %s lacks PKCE, nonce or client id", tc.action, b.idpURL)
		}
	}
	// A plain link sign-in asks for no fresh login; only for consent, which
	// offline_access needs (OpenID Connect Core §11).
	b := newBrowser(t)
	b.stopAtIdP = true
	b.start(e.begin(slackU2))
	q := mustQuery(t, b.idpURL)
	if q.Get("prompt") != "consent" || q.Has("max_age") || q.Get("code_challenge_method") != "S256" || !strings.Contains(q.Get("scope"), "offline_access") {
		t.Errorf("link authorization request = %s", b.idpURL)
	}
}

func mustQuery(t testing.TB, u string) url.Values {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil || u == "" {
		t.Fatalf("URL %q: %v", u, err)
	}
	return parsed.Query()
}

// TestStepUpRefusals: each refused step-up leaves the request pending.
func TestStepUpRefusals(t *testing.T) {
	t.Run("missing MFA", func(t *testing.T) {
		e := newEnv(t)
		r, b := stepUpSetup(t, e, "break-glass")
		b.open(e.beginStepUp(slackU1, r.ID, "approve"))
		status, body := b.login(dana.Username, dana.Password, "") // no one-time code
		wantAnswer(t, "step-up without MFA", status, http.StatusForbidden, body, "not counted", "multi-factor")
		if got := e.request(r.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
			t.Fatalf("request = %s with %d votes", got.State, len(got.Votes))
		}
		if !slices.Contains(e.auditTypes(), "vote.rejected") {
			t.Fatalf("audit = %v", e.auditTypes())
		}
	})

	t.Run("stale auth_time", func(t *testing.T) {
		e := newEnv(t)
		// An IdP that ignores prompt=login and max_age hands back the old
		// session's auth_time: signoff (approvals) refuses it.
		e.op.IgnorePromptLogin(true)
		r, b := stepUpSetup(t, e, "break-glass")
		status, body := b.start(e.beginStepUp(slackU1, r.ID, "approve"))
		wantAnswer(t, "step-up with an old sign-in", status, http.StatusForbidden, body, "not counted", "11m0s ago")
		if got := e.request(r.ID); got.State != storage.StatePending {
			t.Fatalf("request = %s", got.State)
		}
	})

	t.Run("acr not met", func(t *testing.T) {
		e := newEnv(t)
		r, b := stepUpSetup(t, e, "drop-table")
		b.open(e.beginStepUp(slackU1, r.ID, "deny"))
		status, body := b.login(dana.Username, dana.Password, "")
		wantAnswer(t, "step-up with a weak acr", status, http.StatusForbidden, body, "assurance level")
		// With the second factor the deny counts.
		b.open(e.beginStepUp(slackU1, r.ID, "deny"))
		status, body = b.login(dana.Username, dana.Password, dana.OTP)
		wantStatus(t, "step-up with mfa acr", status, http.StatusOK, body)
		if got := e.request(r.ID); got.State != storage.StateDenied {
			t.Fatalf("request = %s", got.State)
		}
		var acr any
		for _, rec := range e.records() {
			if rec.Type == "vote.deny" {
				acr = rec.Data["acr"]
			}
		}
		if acr != testop.ACRMFA {
			t.Fatalf("vote.deny acr = %v, want %s", acr, testop.ACRMFA)
		}
	})

	t.Run("callback in another chat user's browser", func(t *testing.T) {
		e := newEnv(t)
		e.linkAs(slackU2, erin)
		r, b := stepUpSetup(t, e, "break-glass")
		u := e.beginStepUp(slackU1, r.ID, "approve")
		b.stopAtCallback = true
		b.open(u)
		b.login(dana.Username, dana.Password, dana.OTP)
		// Erin's browser, with its own signoff cookie from its own sign-in.
		other := newBrowser(t)
		other.open(e.beginStepUp(slackU2, r.ID, "approve"))
		status, body := other.get(b.callback)
		wantStatus(t, "dana's answer in erin's browser", status, http.StatusForbidden, body)
		if got := e.request(r.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
			t.Fatalf("request = %s with %d votes", got.State, len(got.Votes))
		}
		// And dana's own browser cannot use it any more either.
		status, body = b.get(b.callback)
		wantStatus(t, "dana's answer after the leak", status, http.StatusNotFound, body)
	})

	t.Run("URL opened by another chat user", func(t *testing.T) {
		e := newEnv(t)
		e.linkAs(slackU2, erin)
		r, b := stepUpSetup(t, e, "break-glass")
		u := e.beginStepUp(slackU1, r.ID, "approve")
		// Erin gets dana's URL first and signs in as herself.
		other := newBrowser(t)
		other.open(u)
		status, body := other.login(erin.Username, erin.Password, erin.OTP)
		wantAnswer(t, "erin on dana's step-up", status, http.StatusForbidden, body, "linked to another identity")
		// Dana's own later attempt with that URL is refused as used.
		status, body = b.get(u)
		wantStatus(t, "dana after erin", status, http.StatusNotFound, body)
		if got := e.request(r.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
			t.Fatalf("request = %s with %d votes", got.State, len(got.Votes))
		}
	})

	t.Run("opened twice", func(t *testing.T) {
		e := newEnv(t)
		r, _ := stepUpSetup(t, e, "break-glass")
		u := e.beginStepUp(slackU1, r.ID, "approve")
		newBrowser(t).open(u)
		status, body := newBrowser(t).get(u)
		wantStatus(t, "second browser on the step-up URL", status, http.StatusConflict, body)
	})

	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		r, b := stepUpSetup(t, e, "break-glass")
		u := e.beginStepUp(slackU1, r.ID, "approve")
		e.clk.Advance(10*time.Minute + time.Second)
		status, body := b.get(u)
		wantStatus(t, "expired step-up URL", status, http.StatusGone, body)
	})
}

func TestBeginStepUpNeedsALink(t *testing.T) {
	e := newEnv(t)
	r := e.create("break-glass")
	_, err := e.linker.BeginStepUp(context.Background(), slackU1, r.ID, "approve")
	asLinkRequired(t, err, linkflow.LinkReasonNotLinked)

	e.linkAs(slackU1, dana)
	if _, err := e.linker.BeginStepUp(context.Background(), slackU1, r.ID, "maybe"); err == nil {
		t.Fatal("BeginStepUp accepted decision \"maybe\"")
	}
	if _, err := e.linker.BeginStepUp(context.Background(), slackU1, "", "approve"); err == nil {
		t.Fatal("BeginStepUp accepted an empty request id")
	}
	e.op.Disable("dana")
	e.clk.Advance(25 * time.Hour)
	_, err = e.resolve(slackU1)
	asLinkRequired(t, err, linkflow.LinkReasonStale)
	_, err = e.linker.BeginStepUp(context.Background(), slackU1, r.ID, "approve")
	asLinkRequired(t, err, linkflow.LinkReasonStale)
}

// withAMR makes the test IdP report amr for the sign-ins that follow.
func withAMR(e *env, amr ...string) {
	vals := make([]any, len(amr))
	for i, m := range amr {
		vals[i] = m
	}
	e.op.RewriteIDToken(func(c map[string]any) { c["amr"] = vals })
}

// TestStepUpCountsOnlyRealMultiFactor: require_mfa is met by "mfa" or two
// kinds of factor, never by one method alone, however strong it sounds.
func TestStepUpCountsOnlyRealMultiFactor(t *testing.T) {
	for _, tc := range []struct {
		amr     []string
		counted bool
	}{
		{[]string{"otp"}, false},
		{[]string{"sms"}, false},
		{[]string{"hwk"}, false},
		{[]string{"otp", "sms"}, false},
		{[]string{"pwd", "otp"}, true},
		{[]string{"hwk", "fpt"}, true},
		{[]string{"mfa"}, true},
	} {
		t.Run(strings.Join(tc.amr, "+"), func(t *testing.T) {
			e := newEnv(t)
			r, b := stepUpSetup(t, e, "break-glass")
			withAMR(e, tc.amr...)
			b.open(e.beginStepUp(slackU1, r.ID, "approve"))
			status, body := b.login(dana.Username, dana.Password, dana.OTP)
			got := e.request(r.ID)
			if tc.counted {
				wantStatus(t, "step-up", status, http.StatusOK, body)
				if got.State != storage.StateApproved {
					t.Fatalf("request = %s", got.State)
				}
				return
			}
			wantAnswer(t, "step-up with one factor", status, http.StatusForbidden, body, "did not use multi-factor authentication")
			if got.State != storage.StatePending || len(got.Votes) != 0 {
				t.Fatalf("request after a single-factor step-up: %s %+v", got.State, got.Votes)
			}
			// The clicker hears of it in the chat too.
			if ns := e.notices(slackU1); len(ns) == 0 || !strings.Contains(ns[len(ns)-1].Text, "was not counted") {
				t.Fatalf("notices: %+v", ns)
			}
		})
	}
}

// TestStepUpByAnotherIdentityIsAudited: a step-up sign-in by someone other
// than the linked identity casts nothing, is audited as vote.rejected
// naming who signed in, and the chat account is told.
func TestStepUpByAnotherIdentityIsAudited(t *testing.T) {
	e := newEnv(t)
	r, _ := stepUpSetup(t, e, "break-glass")
	u := e.beginStepUp(slackU1, r.ID, "approve")
	other := newBrowser(t)
	other.open(u)
	status, body := other.login(erin.Username, erin.Password, erin.OTP)
	wantStatus(t, "step-up by erin", status, http.StatusForbidden, body)
	if got := e.request(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes: %+v", got.Votes)
	}
	var rec *audit.Record
	for _, x := range e.records() {
		if x.Type == audit.TypeVoteRejected && x.Data["reason"] == "step_up_identity_mismatch" {
			rec = &x
		}
	}
	if rec == nil || rec.Actor.Subject != "sub-erin" || rec.Actor.PlatformUser != "U1" || rec.RequestID != r.ID {
		t.Fatalf("no vote.rejected naming erin at U1: %v", e.auditTypes())
	}
	if ns := e.notices(slackU1); len(ns) == 0 || !strings.Contains(ns[len(ns)-1].Text, "linked to another identity") {
		t.Fatalf("notices: %+v", ns)
	}
}

// TestRefreshTokenFromAStrictProvider: an OP that follows OpenID Connect
// Core §11 drops offline_access unless the sign-in asks for consent;
// signoff asks, so the link gets a refresh token. When the OP issues none
// anyway, the person is told at link time.
func TestRefreshTokenFromAStrictProvider(t *testing.T) {
	e := newEnv(t)
	e.op.ConsentForOfflineAccess(true)
	b := newBrowser(t)
	b.stopAtIdP = true
	b.start(e.begin(slackU1))
	if q := mustQuery(t, b.idpURL); q.Get("prompt") != "consent" || !strings.Contains(q.Get("scope"), "offline_access") {
		t.Fatalf("authorization request %s", b.idpURL)
	}
	e.linkAs(slackU1, alice)
	if l := e.mustLink(slackU1); len(l.RefreshToken) == 0 {
		t.Fatal("no refresh token kept from a provider that needs prompt=consent")
	}

	e2 := newEnv(t)
	e2.op.NoRefreshTokens(true)
	e2.own(slackU1, alice)
	b2 := newBrowser(t)
	b2.open(e2.begin(slackU1))
	status, body := b2.login(alice.Username, alice.Password, "")
	wantAnswer(t, "link without a refresh token", status, http.StatusOK, body, "no refresh token", "sign in again")
	if !strings.Contains(e2.logs.String(), "issued no refresh token") {
		t.Fatal("the operator is not told that no refresh token came")
	}
}
