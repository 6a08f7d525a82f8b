package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signoff-dev/signoff/internal/browsertest"
	"github.com/signoff-dev/signoff/internal/testop"
)

// browserLogin runs `signoff login --server … --no-browser`, reads the
// sign-in URL it prints, and signs in as u in a fresh headless Chromium:
// the IdP's login form, then the redirect to signoff login's loopback
// listener. It returns what signoff login printed.
func (s *loginServer) browserLogin(t *testing.T, u testop.User) runResult {
	t.Helper()
	authURL, _, res := s.startLogin(t)
	ctx := browsertest.New(t, 90*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(authURL),
		browsertest.SignIn(u.Username, u.Password),
	); err != nil {
		t.Fatalf("signing in as %s in the browser: %v", u.Username, err)
	}
	outcome, text := browsertest.ResultPage(ctx, t)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if outcome != "signed-in" || !strings.Contains(text, u.Email) || !strings.HasPrefix(loc, "http://127.0.0.1:") {
		t.Fatalf("the browser ended on %s (outcome %q): %s", loc, outcome, text)
	}
	r := awaitCommand(t, res)
	if r.code != 0 {
		t.Fatalf("signoff login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// TestLoginInBrowserThenAuditExport is signoff login as a person does it:
// the command prints the sign-in URL, the person signs in at the company
// IdP in a browser, and the command caches the sign-in; `audit export
// --server` then works with no token flag and no $SIGNOFF_TOKEN, as an
// auditor by the groups the IdP lists. Someone signed in without the
// auditor group gets 403, and a login token creates no request.
func TestLoginInBrowserThenAuditExport(t *testing.T) {
	s := startLoginServer(t, true)
	s.requestDeploy(t)

	r := s.browserLogin(t, loginAuditor)
	if !strings.Contains(r.stdout, "Signed in to "+s.base+" as audrey@example.com (groups: audit)") || !strings.Contains(r.stdout, "renewed with the refresh token") {
		t.Errorf("signoff login said:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "code_challenge_method=S256") || !strings.Contains(r.stderr, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") {
		t.Errorf("the sign-in URL is not a PKCE loopback one:\n%s", r.stderr)
	}
	e := s.cachedLogin(t) // checks mode 0600 in a 0700 directory
	if e.Server != s.base || e.Issuer != s.op.Issuer || e.ClientID != loginCLIClient || e.Subject != "sub-audrey" || e.Email != "audrey@example.com" ||
		e.RefreshToken == "" || !e.Expiry.After(time.Now()) || !slices.Contains(s.op.IssuedTokens(), e.IDToken) {
		t.Fatalf("cached login: server %s, issuer %s, client %s, subject %s, email %s, refresh token %t, expiry %s",
			e.Server, e.Issuer, e.ClientID, e.Subject, e.Email, e.RefreshToken != "", e.Expiry)
	}

	code, out, stderr := s.exportAsCached(t)
	if code != 0 || !strings.Contains(out, `"type":"request.created"`) {
		t.Fatalf("audit export as the signed-in auditor: exit %d\n%s\n%s", code, out, stderr)
	}
	status, body := postRequest(t, s.base, e.IDToken)
	if status != http.StatusForbidden || !strings.Contains(body, "login tokens are for admin and auditor endpoints") {
		t.Fatalf("POST /v1/requests with the login token: %d %s", status, body)
	}

	// devon signs in (another browser: no single sign-on as audrey) and
	// replaces the sign-in for this server; devon is no auditor.
	r = s.browserLogin(t, loginSRE)
	if !strings.Contains(r.stdout, "as devon@example.com (groups: sre)") {
		t.Errorf("signoff login said:\n%s", r.stdout)
	}
	if e := s.cachedLogin(t); e.Subject != "sub-devon" {
		t.Fatalf("the cached login is %s's", e.Subject)
	}
	code, out, stderr = s.exportAsCached(t)
	if code != exitRefused || !strings.Contains(stderr, "403") || !strings.Contains(stderr, "auditor") || out != "" {
		t.Fatalf("audit export as a signed-in non-auditor: exit %d\n%s\n%s", code, out, stderr)
	}
	s.noSecretsIn(t, "the server log", s.log.String())
}
