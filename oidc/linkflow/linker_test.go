package linkflow_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// TestLinkFlowThenVoteCounts: begin → IdP login → callback → link stored
// with the IdP's groups → a vote through Resolve's identity counts.
func TestLinkFlowThenVoteCounts(t *testing.T) {
	e := newEnv(t)

	_, err := e.resolve(slackU1)
	lr := asLinkRequired(t, err, linkflow.LinkReasonNotLinked)
	if !strings.HasPrefix(lr.URL, e.baseURL+linkflow.StartPath+"?id=") {
		t.Fatalf("link URL %q is not under public_url %s", lr.URL, e.baseURL)
	}

	b := newBrowser(t)
	b.stopAtCallback = true
	b.open(lr.URL)
	status, _ := b.login(alice.Username, alice.Password, "")
	wantStatus(t, "IdP login", status, http.StatusFound, "")
	cb, err := url.Parse(b.callback)
	if err != nil || cb.Query().Get("code") == "" || cb.Query().Get("state") == "" {
		t.Fatalf("callback URL %q lacks code or state", b.callback)
	}
	code := cb.Query().Get("code")
	status, body := b.get(b.callback)
	wantStatus(t, "callback", status, http.StatusOK, body)
	wantPage(t, "success page", body, `data-outcome="linked"`, "Account linked", "alice@example.com", "U1", "T1", "slack", "sre", e.op.Issuer)

	l := e.mustLink(slackU1)
	if l.Issuer != e.op.Issuer || l.Subject != "sub-alice" || l.Email != "alice@example.com" || l.PreferredUsername != "alice" || !slices.Equal(l.Groups, []string{"sre"}) {
		t.Fatalf("stored link = %+v", l)
	}
	now := e.clk.Now()
	if !l.LinkedAt.Equal(now) || !l.VerifiedAt.Equal(now) || l.AuthTime.IsZero() || !slices.Equal(l.AMR, []string{"pwd"}) || l.Stale {
		t.Fatalf("stored link times/amr = linked %v verified %v auth %v amr %v stale %v (now %v)", l.LinkedAt, l.VerifiedAt, l.AuthTime, l.AMR, l.Stale, now)
	}
	if len(l.RefreshToken) == 0 {
		t.Fatal("no refresh token kept although offline_access and a token key are configured")
	}

	id, err := e.resolve(slackU1)
	if err != nil {
		t.Fatalf("Resolve after linking: %v", err)
	}
	if id.Subject != "sub-alice" || id.Issuer != e.op.Issuer || !slices.Equal(id.Groups, []string{"sre"}) || !id.VerifiedAt.Equal(now) || id.AuthTime.IsZero() {
		t.Fatalf("identity = %+v", id)
	}
	r := e.create("deploy")
	res, err := e.vote(slackU1, id, r.ID)
	if err != nil || !res.Counted || res.Request.State != storage.StateApproved {
		t.Fatalf("vote: %+v, %v", res, err)
	}
	types := e.auditTypes()
	if !slices.Contains(types, "identity.linked") || !slices.Contains(types, "vote.approve") || !slices.Contains(types, "request.approved") {
		t.Fatalf("audit types = %v", types)
	}
	for _, rec := range e.records() {
		if rec.Type == "identity.linked" && (rec.Actor == nil || rec.Actor.Subject != "sub-alice" || rec.Actor.PlatformUser != "U1" || rec.Actor.Workspace != "T1") {
			t.Fatalf("identity.linked actor = %+v", rec.Actor)
		}
	}

	// The code is single use at the IdP and the attempt at signoff.
	status, body = b.get(b.callback)
	if status < 400 || status >= 500 {
		t.Fatalf("replayed callback: status %d\n%s", status, body)
	}

	// No token, code or secret reaches the log or the audit log.
	secrets := append(e.op.IssuedTokens(), code, testop.ClientSecret, string(tokenKey))
	if len(e.op.IssuedTokens()) < 3 {
		t.Fatalf("the IdP issued %d tokens, want access, refresh and ID token", len(e.op.IssuedTokens()))
	}
	logs, auditLog := e.logs.String(), e.auditText()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains a token or secret %.12q…:\n%s", s, logs)
		}
		if strings.Contains(auditLog, s) {
			t.Errorf("audit log contains a token or secret %.12q…", s)
		}
	}
	if !strings.Contains(logs, "identity linked") {
		t.Errorf("log does not mention the link:\n%s", logs)
	}
}

// TestResolveRefusesWithoutUsableLink: not linked, another workspace, an
// expired link.
func TestResolveRefusesWithoutUsableLink(t *testing.T) {
	e := newLinkedEnv(t)

	// A link made in one workspace does not authorize in another.
	_, err := e.resolve(linkflow.PlatformUser{Platform: "slack", Workspace: "T2", UserID: "U1"})
	asLinkRequired(t, err, linkflow.LinkReasonNotLinked)
	_, err = e.resolve(linkflow.PlatformUser{Platform: "teams", Workspace: "T1", UserID: "U1"})
	asLinkRequired(t, err, linkflow.LinkReasonNotLinked)

	// link_max_age bounds the link itself.
	e.clk.Advance(721 * time.Hour)
	_, err = e.resolve(slackU1)
	lr := asLinkRequired(t, err, linkflow.LinkReasonExpired)
	if !strings.Contains(lr.Message, "expired") {
		t.Errorf("message = %q", lr.Message)
	}
	// The fresh URL it carries works: linking again makes it usable.
	b := newBrowser(t)
	b.open(lr.URL)
	if status, body := b.login(alice.Username, alice.Password, ""); status != http.StatusOK {
		t.Fatalf("re-link: %d\n%s", status, body)
	}
	if _, err := e.resolve(slackU1); err != nil {
		t.Fatalf("Resolve after re-linking: %v", err)
	}
}

// TestLinkRefusals: each way a link page refuses, with a 4xx status and a
// page that says what to do.
func TestLinkRefusals(t *testing.T) {
	t.Run("reused link id", func(t *testing.T) {
		e := newEnv(t)
		u := e.begin(slackU1)
		b := newBrowser(t)
		b.open(u)
		if status, body := b.login(alice.Username, alice.Password, ""); status != http.StatusOK {
			t.Fatalf("first use: %d\n%s", status, body)
		}
		status, body := newBrowser(t).get(u)
		wantAnswer(t, "reused link", status, http.StatusNotFound, body, "not valid any more", "What to do")
	})

	t.Run("link opened twice", func(t *testing.T) {
		e := newEnv(t)
		u := e.begin(slackU1)
		newBrowser(t).open(u)
		status, body := newBrowser(t).get(u)
		wantAnswer(t, "second opening", status, http.StatusConflict, body, "already opened", "What to do")
	})

	t.Run("expired link id", func(t *testing.T) {
		e := newEnv(t)
		u := e.begin(slackU1)
		e.clk.Advance(10*time.Minute + time.Second)
		status, body := newBrowser(t).get(u)
		wantAnswer(t, "expired link", status, http.StatusGone, body, "expired", "What to do")
		if _, err := e.attempt(u); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("expired attempt still stored: %v", err)
		}
	})

	t.Run("expired while signing in", func(t *testing.T) {
		e := newEnv(t)
		u := e.begin(slackU1)
		b := newBrowser(t)
		b.open(u)
		e.clk.Advance(11 * time.Minute)
		status, body := b.login(alice.Username, alice.Password, "")
		wantStatus(t, "late callback", status, http.StatusGone, body)
		e.noLink(slackU1)
	})

	t.Run("malformed link id", func(t *testing.T) {
		e := newEnv(t)
		status, body := newBrowser(t).get(e.baseURL + linkflow.StartPath + "?id=short")
		wantStatus(t, "malformed id", status, http.StatusBadRequest, body)
		status, body = newBrowser(t).get(e.baseURL + linkflow.StartPath + "?id=" + strings.Repeat("A", 43))
		wantStatus(t, "unknown id", status, http.StatusNotFound, body)
	})

	t.Run("state mismatch", func(t *testing.T) {
		e := newEnv(t)
		b := e.signInUntilCallback(slackU1, alice)
		cb, _ := url.Parse(b.callback)
		q := cb.Query()
		id, _, _ := strings.Cut(q.Get("state"), ".")
		forged := *cb
		q.Set("state", id+"."+strings.Repeat("x", 43))
		forged.RawQuery = q.Encode()
		status, body := b.get(forged.String())
		wantAnswer(t, "forged state", status, http.StatusBadRequest, body, "does not match")
		q.Set("state", "garbage")
		forged.RawQuery = q.Encode()
		status, body = b.get(forged.String())
		wantStatus(t, "garbage state", status, http.StatusBadRequest, body)
		e.noLink(slackU1)
		// A forged answer does not burn the real sign-in.
		status, body = b.get(b.callback)
		wantStatus(t, "genuine callback after a forged one", status, http.StatusOK, body)
	})

	t.Run("callback without the cookie", func(t *testing.T) {
		e := newEnv(t)
		b := e.signInUntilCallback(slackU1, alice)
		status, body := newBrowser(t).get(b.callback)
		wantAnswer(t, "callback in another browser", status, http.StatusForbidden, body, "another browser", "What to do")
		e.noLink(slackU1)
		// The leaked answer used the attempt up: not even the first
		// browser can finish it now.
		status, body = b.get(b.callback)
		wantStatus(t, "callback after the leak", status, http.StatusNotFound, body)
		e.noLink(slackU1)
	})

	t.Run("link for user A completed in the browser of user B", func(t *testing.T) {
		e := newEnv(t)
		// B's browser opens B's own link (it holds B's cookie).
		bB := newBrowser(t)
		bB.open(e.begin(slackU2))
		// A's link is opened elsewhere; its IdP address is passed to B.
		bA := newBrowser(t)
		bA.stopAtIdP = true
		status, body := bA.start(e.begin(slackU1))
		wantStatus(t, "A's start", status, http.StatusFound, body)
		bB.get(bA.idpURL)
		status, body = bB.login(bob.Username, bob.Password, "")
		wantStatus(t, "A's sign-in in B's browser", status, http.StatusForbidden, body)
		e.noLink(slackU1)
		e.noLink(slackU2)

		// Even B's own cookie value presented under A's cookie name does
		// not pass.
		bA2 := e.signInUntilCallback(slackU1, alice)
		cb, _ := url.Parse(bA2.callback)
		var bCookie *http.Cookie
		for _, c := range bB.c.Jar.Cookies(cb) {
			bCookie = c
		}
		if bCookie == nil {
			t.Fatal("B's browser holds no signoff cookie")
		}
		req, _ := http.NewRequest(http.MethodGet, bA2.callback, nil)
		for _, c := range bA2.c.Jar.Cookies(cb) {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: bCookie.Value})
		}
		status, body = (&browser{t: t, c: &http.Client{}}).do(req)
		wantStatus(t, "A's answer with B's cookie value", status, http.StatusForbidden, body)
		e.noLink(slackU1)
	})

	t.Run("idp error response", func(t *testing.T) {
		e := newEnv(t)
		u := e.begin(slackU1)
		b := newBrowser(t)
		b.open(u)
		status, body := b.cancel()
		wantAnswer(t, "access_denied", status, http.StatusForbidden, body, "access_denied", "What to do")
		e.noLink(slackU1)
		if _, err := e.attempt(u); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("attempt survived the IdP's refusal: %v", err)
		}
	})

	t.Run("callback without code", func(t *testing.T) {
		e := newEnv(t)
		status, body := newBrowser(t).get(e.baseURL + linkflow.CallbackPath)
		wantStatus(t, "bare callback", status, http.StatusBadRequest, body)
	})
}

// TestIDTokenRefused: the code exchange succeeds but the ID token fails a
// check; nothing is linked.
func TestIDTokenRefused(t *testing.T) {
	cases := []struct {
		name    string
		rewrite func(e *env, c map[string]any)
		want    string
	}{
		{"nonce mismatch", func(_ *env, c map[string]any) { c["nonce"] = "another-sign-in" }, "nonce"},
		{"another audience", func(_ *env, c map[string]any) {
			c["aud"] = []string{"some-other-app"}
			c["azp"] = "some-other-app"
		}, "does not verify"},
		{"another audience next to ours", func(_ *env, c map[string]any) {
			c["aud"] = []string{testop.ClientID, "some-other-app"}
			c["azp"] = "some-other-app"
		}, "authorized party"},
		{"expired", func(e *env, c map[string]any) { c["exp"] = e.clk.Now().Add(-time.Hour).Unix() }, "expired"},
		{"another issuer", func(_ *env, c map[string]any) { c["iss"] = "https://evil.example" }, "does not verify"},
		{"no subject", func(_ *env, c map[string]any) { delete(c, "sub") }, "subject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.op.RewriteIDToken(func(c map[string]any) { tc.rewrite(e, c) })
			b := newBrowser(t)
			b.open(e.begin(slackU1))
			status, body := b.login(alice.Username, alice.Password, "")
			wantAnswer(t, tc.name, status, http.StatusForbidden, body, "could not be verified", tc.want, "What to do")
			e.noLink(slackU1)
			if slices.Contains(e.auditTypes(), "identity.linked") {
				t.Fatal("identity.linked audited for a refused ID token")
			}
		})
	}

	t.Run("bad signature", func(t *testing.T) {
		e := newEnv(t)
		e.op.RewriteRawIDToken(func(raw string) string {
			// Change the claims but keep the IdP's signature.
			parts := strings.Split(raw, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload = bytes.Replace(payload, []byte(`"sre"`), []byte(`"adm"`), 1)
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			return strings.Join(parts, ".")
		})
		b := newBrowser(t)
		b.open(e.begin(slackU1))
		status, body := b.login(alice.Username, alice.Password, "")
		wantAnswer(t, "bad signature", status, http.StatusForbidden, body, "does not verify")
		e.noLink(slackU1)
	})
}

// TestRelinkReplacesOldLink: linking the same chat account to another
// identity replaces the link, audited as unlinked + linked.
func TestRelinkReplacesOldLink(t *testing.T) {
	e := newLinkedEnv(t)
	e.linkAs(slackU1, bob)
	if l := e.mustLink(slackU1); l.Subject != "sub-bob" {
		t.Fatalf("link subject = %s, want sub-bob", l.Subject)
	}
	id, err := e.resolve(slackU1)
	if err != nil || id.Subject != "sub-bob" {
		t.Fatalf("Resolve = %+v, %v", id, err)
	}
	var got []string
	for _, r := range e.records() {
		got = append(got, r.Type+":"+r.Actor.Subject)
	}
	want := []string{"identity.linked:sub-alice", "identity.unlinked:sub-alice", "identity.linked:sub-bob"}
	if !slices.Equal(got, want) {
		t.Fatalf("audit = %v, want %v", got, want)
	}
}

// TestGroupRemovedAtIdP: after groups_max_age the refresh reads the new
// groups (rotating the refresh token) and the next vote is refused as not
// eligible.
func TestGroupRemovedAtIdP(t *testing.T) {
	e := newLinkedEnv(t)
	first := e.mustLink(slackU1)

	// Within groups_max_age nothing is asked of the IdP.
	e.clk.Advance(23 * time.Hour)
	e.op.SetGroups("alice")
	id, err := e.resolve(slackU1)
	if err != nil || !slices.Equal(id.Groups, []string{"sre"}) || e.op.Refreshes() != 0 {
		t.Fatalf("Resolve within groups_max_age = %+v, %v (refreshes %d)", id, err, e.op.Refreshes())
	}

	e.clk.Advance(2 * time.Hour)
	id, err = e.resolve(slackU1)
	if err != nil {
		t.Fatalf("Resolve after groups_max_age: %v", err)
	}
	if len(id.Groups) != 0 || !id.VerifiedAt.Equal(e.clk.Now()) || e.op.Refreshes() != 1 {
		t.Fatalf("refreshed identity = %+v (refreshes %d)", id, e.op.Refreshes())
	}
	l := e.mustLink(slackU1)
	if bytes.Equal(l.RefreshToken, first.RefreshToken) || !l.LinkedAt.Equal(first.LinkedAt) || len(l.Groups) != 0 {
		t.Fatalf("link after refresh: rotated %v, linked_at %v, groups %v", !bytes.Equal(l.RefreshToken, first.RefreshToken), l.LinkedAt, l.Groups)
	}
	if e.op.LiveRefreshTokens() != 1 {
		t.Fatalf("the IdP holds %d live refresh tokens, want 1 (rotation)", e.op.LiveRefreshTokens())
	}

	r := e.create("deploy")
	_, err = e.vote(slackU1, id, r.ID)
	if !errors.Is(err, approvals.ErrNotEligible) {
		t.Fatalf("vote after the group was removed: %v, want ErrNotEligible", err)
	}
	e.wantGroupsRefreshedFromSRE()

	// The group comes back: the next refresh (with the rotated token)
	// sees it.
	e.op.SetGroups("alice", "sre")
	e.clk.Advance(25 * time.Hour)
	id, err = e.resolve(slackU1)
	if err != nil || !slices.Equal(id.Groups, []string{"sre"}) || e.op.Refreshes() != 2 {
		t.Fatalf("second refresh = %+v, %v", id, err)
	}
	if _, err := e.vote(slackU1, id, e.create("deploy").ID); err != nil {
		t.Fatalf("vote after the group came back: %v", err)
	}
}

// TestUserDisabledMakesLinkStale: the refresh is refused, the link is
// marked stale and votes are refused until the person links again.
func TestUserDisabledMakesLinkStale(t *testing.T) {
	e := newLinkedEnv(t)
	e.clk.Advance(25 * time.Hour)
	e.op.Disable("alice")

	_, err := e.resolve(slackU1)
	lr := asLinkRequired(t, err, linkflow.LinkReasonStale)
	if !strings.Contains(lr.Message, "invalid_grant") {
		t.Errorf("message = %q, want the IdP's reason", lr.Message)
	}
	l := e.mustLink(slackU1)
	if !l.Stale || l.RefreshToken != nil || !strings.Contains(l.StaleReason, "invalid_grant") {
		t.Fatalf("link = stale %v reason %q token %d bytes", l.Stale, l.StaleReason, len(l.RefreshToken))
	}
	if !slices.Contains(e.auditTypes(), approvals.TypeIdentityStale) {
		t.Fatalf("audit = %v, want identity.stale", e.auditTypes())
	}

	// Stale stays stale without asking the IdP again.
	refreshes := e.op.Refreshes()
	_, err = e.resolve(slackU1)
	asLinkRequired(t, err, linkflow.LinkReasonStale)
	if e.op.Refreshes() != refreshes {
		t.Fatal("a stale link was refreshed again")
	}

	// A vote through the link's last identity is refused too.
	stored := e.mustLink(slackU1)
	r := e.create("deploy")
	_, err = e.vote(slackU1, oidc.Identity{Issuer: stored.Issuer, Subject: stored.Subject, Groups: stored.Groups, VerifiedAt: stored.VerifiedAt}, r.ID)
	if !errors.Is(err, approvals.ErrStaleIdentity) {
		t.Fatalf("vote through the stale link: %v, want ErrStaleIdentity", err)
	}

	// The disabled user cannot link again either.
	b := newBrowser(t)
	b.open(lr.URL)
	_, body := b.login(alice.Username, alice.Password, "")
	if !strings.Contains(body, "disabled") {
		t.Fatalf("disabled user's login page:\n%s", body)
	}
}

// TestNoRefreshTokenMeansRelink: without a token key no refresh token is
// kept, and old groups mean signing in again (not a stale link).
func TestNoRefreshTokenMeansRelink(t *testing.T) {
	e := newLinkedEnv(t, func(o *linkflow.LinkerOptions) { o.TokenKey = nil })
	if l := e.mustLink(slackU1); l.RefreshToken != nil {
		t.Fatal("a refresh token was kept without a token key")
	}
	e.clk.Advance(24*time.Hour + time.Second)
	_, err := e.resolve(slackU1)
	asLinkRequired(t, err, linkflow.LinkReasonReverify)
	if e.mustLink(slackU1).Stale {
		t.Fatal("link marked stale although the IdP refused nothing")
	}
	if e.op.Refreshes() != 0 || len(e.op.RefreshTokens()) != 0 {
		t.Fatalf("refresh tokens were requested (%d) or used (%d) without a token key", len(e.op.RefreshTokens()), e.op.Refreshes())
	}
}

// TestIdPUnreachable: a network failure fails closed with a temporary
// error and marks nothing; discovery is retried; a start link survives an
// outage.
func TestIdPUnreachable(t *testing.T) {
	t.Run("during refresh", func(t *testing.T) {
		e := newLinkedEnv(t)
		e.clk.Advance(25 * time.Hour)
		e.net.set(true)
		_, err := e.resolve(slackU1)
		if !errors.Is(err, linkflow.ErrIdPUnavailable) {
			t.Fatalf("Resolve with the IdP down: %v, want ErrIdPUnavailable", err)
		}
		var lr *linkflow.LinkRequiredError
		if errors.As(err, &lr) {
			t.Fatal("a network failure asked the person to re-link")
		}
		if l := e.mustLink(slackU1); l.Stale {
			t.Fatal("a network failure marked the link stale")
		}
		e.net.set(false)
		if _, err := e.resolve(slackU1); err != nil {
			t.Fatalf("Resolve once the IdP is back: %v", err)
		}
	})

	t.Run("at start", func(t *testing.T) {
		e := newEnv(t)
		e.net.set(true)
		u := e.begin(slackU1)
		status, body := newBrowser(t).get(u)
		wantAnswer(t, "start with the IdP down", status, http.StatusServiceUnavailable, body, "cannot be reached", "still works")
		e.net.set(false)
		// Discovery failures are remembered for DiscoveryRetry.
		status, _ = newBrowser(t).get(u)
		wantStatus(t, "start right after the outage", status, http.StatusServiceUnavailable, "")
		e.clk.Advance(oidc.DefaultDiscoveryRetry + time.Second)
		b := newBrowser(t)
		b.open(u)
		if status, body := b.login(alice.Username, alice.Password, ""); status != http.StatusOK {
			t.Fatalf("same link after the outage: %d\n%s", status, body)
		}
	})

	t.Run("at callback", func(t *testing.T) {
		e := newEnv(t)
		b := e.signInUntilCallback(slackU1, alice)
		e.net.set(true)
		status, body := b.get(b.callback)
		wantAnswer(t, "callback with the IdP down", status, http.StatusBadGateway, body, "did not answer", "What to do")
		e.noLink(slackU1)
	})
}

// TestRefreshTokenStoredEncrypted: the store never holds a refresh token
// in clear, and an altered sealed token does not open.
func TestRefreshTokenStoredEncrypted(t *testing.T) {
	e := newLinkedEnv(t)
	e.clk.Advance(25 * time.Hour)
	if _, err := e.resolve(slackU1); err != nil {
		t.Fatal(err)
	}
	issued := e.op.RefreshTokens()
	if len(issued) != 2 {
		t.Fatalf("the IdP issued %d refresh tokens, want 2", len(issued))
	}
	l := e.mustLink(slackU1)
	for _, tok := range issued {
		if bytes.Contains(l.RefreshToken, []byte(tok)) {
			t.Fatal("stored refresh token contains the plaintext")
		}
	}
	// Nor does the database file, anywhere.
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range e.op.IssuedTokens() {
		if bytes.Contains(raw, []byte(tok)) {
			t.Fatalf("the database file holds a token in clear (%.10s…)", tok)
		}
	}
}

func TestTamperedRefreshTokenRefusesToOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(l *storage.IdentityLink)
	}{
		{"flipped ciphertext byte", func(l *storage.IdentityLink) { l.RefreshToken[len(l.RefreshToken)-5] ^= 1 }},
		{"flipped nonce byte", func(l *storage.IdentityLink) { l.RefreshToken[3] ^= 0x80 }},
		{"truncated", func(l *storage.IdentityLink) { l.RefreshToken = l.RefreshToken[:10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLinkedEnv(t)
			l := e.mustLink(slackU1)
			tc.modify(&l)
			if err := e.store.Update(context.Background(), func(tx storage.Tx) error { return tx.PutLink(l) }); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(25 * time.Hour)
			_, err := e.resolve(slackU1)
			asLinkRequired(t, err, linkflow.LinkReasonReverify)
			if e.op.Refreshes() != 0 {
				t.Fatal("a tampered token reached the IdP")
			}
		})
	}

	t.Run("moved to another chat account", func(t *testing.T) {
		e := newLinkedEnv(t)
		e.linkAs(slackU2, bob)
		a, b := e.mustLink(slackU1), e.mustLink(slackU2)
		b.RefreshToken = a.RefreshToken
		if err := e.store.Update(context.Background(), func(tx storage.Tx) error { return tx.PutLink(b) }); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(25 * time.Hour)
		_, err := e.resolve(slackU2)
		asLinkRequired(t, err, linkflow.LinkReasonReverify)
	})

	t.Run("another key", func(t *testing.T) {
		e := newLinkedEnv(t)
		other := e.opts
		other.TokenKey = []byte("a-completely-different-key-0123456789abcdef")
		lk, err := linkflow.NewLinker(other)
		if err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(25 * time.Hour)
		_, err = lk.Resolve(context.Background(), slackU1)
		asLinkRequired(t, err, linkflow.LinkReasonReverify)
	})
}

// TestConcurrentResolveRefreshesOnce: two clicks at once after
// groups_max_age share one refresh, so rotation does not spend the token
// twice and stale the link.
func TestConcurrentResolveRefreshesOnce(t *testing.T) {
	e := newLinkedEnv(t)
	e.clk.Advance(25 * time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = e.resolve(slackU1)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Resolve: %v", err)
		}
	}
	if n := e.op.Refreshes(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	if e.mustLink(slackU1).Stale {
		t.Fatal("link went stale")
	}
}

// TestPagesEscapeInput: values from chat and the IdP are escaped.
func TestPagesEscapeInput(t *testing.T) {
	e := newEnv(t)
	p := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: `U<script>alert(1)</script>`}
	e.own(p, alice)
	b := newBrowser(t)
	b.open(e.begin(p))
	status, body := b.login(alice.Username, alice.Password, "")
	wantAnswer(t, "link", status, http.StatusOK, body, "U&lt;script&gt;alert(1)&lt;/script&gt;")
}

// TestCleanupRemovesExpiredAttempts: Cleanup and the RunCleanup loop on
// the injected clock.
func TestCleanupRemovesExpiredAttempts(t *testing.T) {
	e := newEnv(t, func(o *linkflow.LinkerOptions) { o.CleanupInterval = time.Minute })
	u1, u2 := e.begin(slackU1), e.begin(slackU2)
	e.clk.Advance(5 * time.Minute)
	u3 := e.begin(slackU1)
	e.clk.Advance(6 * time.Minute)
	n, err := e.linker.Cleanup(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Cleanup = %d, %v; want 2", n, err)
	}
	for _, u := range []string{u1, u2} {
		if _, err := e.attempt(u); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("expired attempt kept: %v", err)
		}
	}
	if _, err := e.attempt(u3); err != nil {
		t.Fatalf("live attempt removed: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.linker.RunCleanup(ctx)
	}()
	testenv.Eventually(t, "cleanup loop to wait", func() bool { return e.clk.Waiters() == 1 })
	e.clk.Advance(5 * time.Minute)
	testenv.Eventually(t, "cleanup loop to remove the attempt", func() bool {
		_, err := e.attempt(u3)
		return errors.Is(err, storage.ErrNotFound)
	})
	cancel()
	<-done
}

func TestNewLinkerRefusesBadOptions(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		modify func(o *linkflow.LinkerOptions)
		want   string
	}{
		{"http issuer", func(o *linkflow.LinkerOptions) { o.Issuer = "http://idp.example.com" }, "https"},
		{"no client id", func(o *linkflow.LinkerOptions) { o.ClientID = "" }, "client_id"},
		{"http redirect", func(o *linkflow.LinkerOptions) { o.RedirectURL = "http://signoff.example.com/link/callback" }, "https"},
		{"wrong redirect path", func(o *linkflow.LinkerOptions) { o.RedirectURL = "https://signoff.example.com/callback" }, "/link/callback"},
		{"short token key", func(o *linkflow.LinkerOptions) { o.TokenKey = []byte("short") }, "at least 32"},
		{"no store", func(o *linkflow.LinkerOptions) { o.Store = nil }, "Store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := e.opts
			tc.modify(&o)
			_, err := linkflow.NewLinker(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewLinker: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	// An https public URL makes the cookie Secure.
	o := e.opts
	o.RedirectURL = "https://signoff.example.com/prefix/link/callback"
	lk, err := linkflow.NewLinker(o)
	if err != nil {
		t.Fatal(err)
	}
	u, err := lk.Begin(context.Background(), slackU1)
	if err != nil || !strings.HasPrefix(u, "https://signoff.example.com/prefix/link/start?id=") {
		t.Fatalf("Begin = %q, %v", u, err)
	}
}
