package linkflow_test

// Attacks on the account-link and step-up flow.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// TestAttackStepUpAnsweredFromOldSessionRefused: a step-up is a fresh
// sign-in (docs/idp.md: "a vote waits for a fresh sign-in with
// prompt=login"). With an IdP that answers from its session instead, the
// sign-in that linked the account 2 minutes earlier would pass for the
// step-up within max_age, no password or second factor asked; its
// auth_time, before the step-up began, refuses it.
func TestAttackStepUpAnsweredFromOldSessionRefused(t *testing.T) {
	e := newEnv(t)
	e.op.IgnorePromptLogin(true)
	b := e.linkAs(slackU1, dana) // MFA sign-in now; the browser keeps the IdP session
	e.clk.Advance(2 * time.Minute)
	r := e.create("break-glass") // step_up: max_age 5m, require_mfa

	u := e.beginStepUp(slackU1, r.ID, "approve")
	status, body := b.start(u) // Continue: the IdP answers at once, no login form
	if strings.Contains(body, "Sign in to the test IdP") {
		t.Skip("the IdP asked for a login; nothing to show")
	}
	if got := e.request(r.ID); got.State != storage.StatePending || strings.Contains(body, `data-outcome="voted"`) {
		t.Fatalf("step-up completed without any new sign-in (status %d): the request is %s; the vote's auth_time is the link's sign-in 2m before the step-up began",
			status, got.State)
	}
}

// TestAttackErrorDescriptionScriptEscaped: script in error_description (and in error) is shown escaped, the
// status is 4xx, and an error answer with a forged state leaves the real
// attempt usable.
func TestAttackErrorDescriptionScriptEscaped(t *testing.T) {
	e := newEnv(t)
	b := e.signInUntilCallback(slackU1, alice)
	cb, _ := url.Parse(b.callback)
	state := cb.Query().Get("state")
	id, _, _ := strings.Cut(state, ".")

	attacker := newBrowser(t)
	for _, q := range []url.Values{
		{"error": {"access_denied"}, "error_description": {`<script>alert(1)</script><img src=x onerror=alert(2)>`}, "state": {id + ".forged"}},
		{"error": {`"><script>alert(3)</script>`}, "error_description": {"javascript:alert(4)"}},
		{"error": {"server_error"}, "error_description": {"\u202e<svg onload=alert(5)>"}, "state": {id + ".forged"}},
	} {
		u := e.baseURL + "/link/callback?" + q.Encode()
		status, body := attacker.get(u)
		if status < 400 || status >= 500 {
			t.Errorf("status %d for %v", status, q)
		}
		for _, bad := range []string{"<script", "<img", "<svg", "\u202e"} {
			if strings.Contains(body, bad) {
				t.Errorf("page contains %q unescaped:\n%s", bad, body)
			}
		}
	}
	// The real answer still completes.
	status, body := b.get(b.callback)
	wantAnswer(t, "real callback after forged errors", status, http.StatusOK, body, `data-outcome="linked"`)
}

// TestAttackCallbackTamperAndCrossBrowser: the IdP's answer replayed or carried to another browser (login
// CSRF) links nothing and votes as nobody; a tampered state (other secret,
// other attempt id) is refused without using the attempt up.
func TestAttackCallbackTamperAndCrossBrowser(t *testing.T) {
	e := newEnv(t)
	b := e.signInUntilCallback(slackU1, alice)
	cb, _ := url.Parse(b.callback)
	q := cb.Query()
	id, secret, _ := strings.Cut(q.Get("state"), ".")

	other := e.begin(slackU2) // another attempt (bob's)
	ou, _ := url.Parse(other)
	otherID := ou.Query().Get("id")

	for name, state := range map[string]string{
		"other secret":     id + "." + strings.Repeat("A", len(secret)),
		"other attempt id": otherID + "." + secret,
		"id only":          id,
		"empty secret":     id + ".",
	} {
		tq := url.Values{"code": {q.Get("code")}, "state": {state}}
		status, _ := b.get(e.baseURL + "/link/callback?" + tq.Encode())
		if status != http.StatusBadRequest && status != http.StatusNotFound {
			t.Errorf("%s: status %d", name, status)
		}
	}
	e.noLink(slackU1)
	e.noLink(slackU2)

	// Login CSRF: the victim (bob, U2's browser) is made to open alice's
	// answer.
	victim := newBrowser(t)
	status, body := victim.get(b.callback)
	wantStatus(t, "callback in another browser", status, http.StatusForbidden, body)
	e.noLink(slackU1)
	e.noLink(slackU2)
	// The leaked answer is used up: even the right browser cannot use it now.
	if status, _ := b.get(b.callback); status == http.StatusOK {
		t.Fatal("the answer still linked after leaking to another browser")
	}
	e.noLink(slackU1)
}

// TestAttackLinkPreviewsDoNotConsumeLinks: link previews and checkers (GET and HEAD, without cookies, many
// times) do not use a link up, and a GET by a bot does not let the bot
// start the sign-in: the confirmation form needs the bot's own cookie,
// and once the owner starts, the bot's form is refused.
func TestAttackLinkPreviewsDoNotConsumeLinks(t *testing.T) {
	e := newEnv(t)
	u := e.begin(slackU1)
	bot := newBrowser(t)
	for range 3 {
		if status, body := bot.get(u); status != http.StatusOK || !strings.Contains(body, `data-outcome="confirm"`) {
			t.Fatalf("preview GET: %d", status)
		}
		req, _ := http.NewRequest(http.MethodHead, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	owner := newBrowser(t)
	owner.open(u)
	if status, body := owner.login(alice.Username, alice.Password, ""); status != http.StatusOK || !strings.Contains(body, `data-outcome="linked"`) {
		t.Fatalf("owner after previews: %d\n%s", status, body)
	}
	// The bot's confirmation page, pressed late, cannot start the link again.
	if status, body := bot.start(u); status == http.StatusOK && strings.Contains(body, "Sign in to the test IdP") {
		t.Fatal("a used link was started again")
	}
}

// TestAttackStepUpBoundToItsRequestAndIdentity: a step-up link for one request casts only that request's vote,
// as the decision it was made for, however its callback is replayed or
// carried; a step-up completed by another identity casts nothing.
func TestAttackStepUpBoundToItsRequestAndIdentity(t *testing.T) {
	e := newEnv(t)
	r1, b := stepUpSetup(t, e, "break-glass")
	r2 := e.create("break-glass")

	b.stopAtCallback = true
	b.open(e.beginStepUp(slackU1, r1.ID, "deny"))
	b.login(dana.Username, dana.Password, dana.OTP)
	cb := b.callback
	b.stopAtCallback = false
	status, body := b.get(cb)
	wantAnswer(t, "step-up", status, http.StatusOK, body, `data-outcome="voted"`)
	if got := e.request(r1.ID); got.State != storage.StateDenied {
		t.Fatalf("r1 = %s", got.State)
	}
	if got := e.request(r2.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
		t.Fatalf("r2 = %s with %d votes", got.State, len(got.Votes))
	}
	// Another identity (erin, with MFA) completes dana's step-up for r2.
	b2 := newBrowser(t)
	b2.open(e.beginStepUp(slackU1, r2.ID, "approve"))
	status, body = b2.login(erin.Username, erin.Password, erin.OTP)
	if status == http.StatusOK {
		t.Fatalf("step-up by erin counted for dana's account: %s", body)
	}
	if got := e.request(r2.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
		t.Fatalf("r2 = %s with %d votes", got.State, len(got.Votes))
	}
}
