package oidc_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc"
)

// The command line's sign-in (`signoff login`) against the test OP, as a
// public client with a loopback redirect. The browser is an HTTP client
// with a cookie jar; cmd/signoff's test drives the same flow in Chromium.

const cliClientID = "signoff-cli"

var cliAuditor = testop.User{Username: "audrey", Password: "audrey-pw", Email: "audrey@example.com", Name: "Audrey", Groups: []string{"audit"}}

// cliEnv is a test OP with the CLI's public client, and a CLIClient for it.
type cliEnv struct {
	op     *testop.OP
	client *oidc.CLIClient
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	op := testop.New(t, clock.Real{}, "")
	op.AddPublicClient(cliClientID)
	op.AddUser(cliAuditor)
	return &cliEnv{op: op, client: &oidc.CLIClient{
		Issuer: op.Issuer, ClientID: cliClientID, GroupsClaim: "groups",
		Scopes: []string{"openid", "email", "profile", "groups", "offline_access"},
	}}
}

// cliLogin is a Login running in the background.
type cliLogin struct {
	authURL  chan string
	done     chan struct{}
	tokens   *oidc.CLITokens
	err      error
	mu       sync.Mutex
	warnings []string
}

func (e *cliEnv) start(t *testing.T) *cliLogin {
	t.Helper()
	l := &cliLogin{authURL: make(chan string, 1), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	go func() {
		defer close(l.done)
		l.tokens, l.err = e.client.Login(ctx, oidc.CLILoginOptions{
			ShowURL: func(u string) { l.authURL <- u },
			Warn: func(msg string) {
				l.mu.Lock()
				l.warnings = append(l.warnings, msg)
				l.mu.Unlock()
			},
		})
	}()
	return l
}

func (l *cliLogin) url(t *testing.T) string {
	t.Helper()
	select {
	case u := <-l.authURL:
		return u
	case <-l.done:
		t.Fatalf("Login ended before showing a URL: %v", l.err)
	case <-time.After(20 * time.Second):
		t.Fatal("Login showed no URL")
	}
	return ""
}

func (l *cliLogin) wait(t *testing.T) (*oidc.CLITokens, error) {
	t.Helper()
	select {
	case <-l.done:
		return l.tokens, l.err
	case <-time.After(30 * time.Second):
		t.Fatal("Login did not finish")
	}
	return nil, nil
}

var cliLoginIDRE = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)

// signIn opens authURL in a cookie-keeping HTTP client, submits the OP's
// login form with action ("login" or "deny") and returns the page the
// redirects end on.
func signIn(t *testing.T, authURL string, u testop.User, action string) (*http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	m := cliLoginIDRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the OP did not show its login form (%d):\n%s", resp.StatusCode, body)
	}
	target := resp.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	resp, err = c.PostForm(target.String(), url.Values{"id": {m[1]}, "username": {u.Username}, "password": {u.Password}, "action": {action}})
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCLILoginSignsInWithPKCEAndLoopbackRedirect(t *testing.T) {
	e := newCLIEnv(t)
	l := e.start(t)
	authURL := l.url(t)
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	redirect, _ := url.Parse(q.Get("redirect_uri"))
	switch {
	case !strings.HasPrefix(authURL, e.op.Issuer):
		t.Errorf("the sign-in URL is not at the issuer: %s", authURL)
	case q.Get("client_id") != cliClientID || q.Get("response_type") != "code":
		t.Errorf("client_id / response_type: %s", authURL)
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		t.Errorf("no PKCE S256: %s", authURL)
	case len(q.Get("state")) < 32 || len(q.Get("nonce")) < 32:
		t.Errorf("state or nonce missing or short: %s", authURL)
	case redirect == nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" || redirect.Path != oidc.CLICallbackPath:
		t.Errorf("redirect_uri %q is not http://127.0.0.1:PORT/callback", q.Get("redirect_uri"))
	case q.Get("client_secret") != "":
		t.Errorf("a public client sent a secret")
	}

	resp, body := signIn(t, authURL, cliAuditor, "login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-outcome="signed-in"`) || !strings.Contains(body, "audrey@example.com") {
		t.Fatalf("the browser ended on %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "default-src 'none'" {
		t.Errorf("page CSP %q", csp)
	}
	toks, err := l.wait(t)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if toks.Subject != "sub-audrey" || toks.Email != "audrey@example.com" || !slices.Equal(toks.Groups, []string{"audit"}) {
		t.Errorf("tokens name %+v", toks)
	}
	if toks.IDToken == "" || toks.RefreshToken == "" || !toks.Expiry.After(time.Now()) {
		t.Errorf("id token %t, refresh token %t, expiry %s", toks.IDToken != "", toks.RefreshToken != "", toks.Expiry)
	}
	if !slices.Contains(e.op.IssuedTokens(), toks.IDToken) {
		t.Error("the ID token is not the one the OP issued")
	}

	// The listener is gone once the sign-in is over.
	if _, err := http.Get(redirect.String()); err == nil {
		t.Error("the loopback listener still answers after the sign-in")
	}
}

func TestCLILoginRefusesForeignState(t *testing.T) {
	e := newCLIEnv(t)
	l := e.start(t)
	authURL := l.url(t)
	u, _ := url.Parse(authURL)
	redirect := u.Query().Get("redirect_uri")

	// A callback with another state (a page elsewhere, an old tab) is
	// refused, and the sign-in goes on waiting for its own.
	resp, err := http.Get(redirect + "?code=forged-code&state=" + strings.Repeat("A", 43))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "does not belong") {
		t.Fatalf("foreign state answered %d:\n%s", resp.StatusCode, body)
	}
	// Nor does the right state under another host name count.
	req, _ := http.NewRequest(http.MethodGet, redirect+"?code=forged-code&state="+url.QueryEscape(u.Query().Get("state")), nil)
	req.Host = "rebound.example:80"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, resp); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a callback under another Host answered %d", resp.StatusCode)
	}
	select {
	case <-l.done:
		t.Fatalf("Login ended on a foreign callback: %v", l.err)
	default:
	}

	resp, body = signIn(t, authURL, cliAuditor, "login")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the real sign-in ended on %d:\n%s", resp.StatusCode, body)
	}
	toks, err := l.wait(t)
	if err != nil || toks.Subject != "sub-audrey" {
		t.Fatalf("Login after a foreign callback: %+v %v", toks, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.warnings) != 1 || !strings.Contains(l.warnings[0], "state") {
		t.Errorf("warnings: %q", l.warnings)
	}
}

func TestCLILoginRefusesBadIDTokens(t *testing.T) {
	cases := map[string]struct {
		rewrite func(map[string]any)
		want    string
	}{
		"wrong nonce":    {func(c map[string]any) { c["nonce"] = "someone-elses-nonce" }, "nonce"},
		"wrong audience": {func(c map[string]any) { c["aud"] = []string{"another-client"} }, "audience"},
		"wrong issuer":   {func(c map[string]any) { c["iss"] = "https://evil.example" }, "issued by a different provider"},
		"expired":        {func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, "expired"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newCLIEnv(t)
			e.op.RewriteIDToken(tc.rewrite)
			l := e.start(t)
			resp, body := signIn(t, l.url(t), cliAuditor, "login")
			toks, err := l.wait(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Login = %+v, %v; want a refusal naming %q", toks, err, tc.want)
			}
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `data-outcome="error"`) {
				t.Errorf("the browser ended on %d:\n%s", resp.StatusCode, body)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		e := newCLIEnv(t)
		e.op.RewriteRawIDToken(func(raw string) string {
			parts := strings.Split(raw, ".")
			return `eyJhbGciOiJub25lIn0.` + parts[1] + "."
		})
		l := e.start(t)
		signIn(t, l.url(t), cliAuditor, "login")
		if _, err := l.wait(t); err == nil {
			t.Fatal("an unsigned ID token was accepted")
		}
	})
}

func TestCLILoginReportsTheIdPsRefusal(t *testing.T) {
	e := newCLIEnv(t)
	l := e.start(t)
	resp, body := signIn(t, l.url(t), cliAuditor, "deny")
	_, err := l.wait(t)
	if err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("Login after the person cancelled: %v", err)
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "access_denied") {
		t.Errorf("the browser ended on %d:\n%s", resp.StatusCode, body)
	}
}

func TestCLILoginEndsWithItsContext(t *testing.T) {
	e := newCLIEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.client.Login(ctx, oidc.CLILoginOptions{ShowURL: func(string) { cancel() }})
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "no sign-in completed") {
			t.Fatalf("Login after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Login ignored its context")
	}
}

func TestCLIRefresh(t *testing.T) {
	e := newCLIEnv(t)
	l := e.start(t)
	signIn(t, l.url(t), cliAuditor, "login")
	first, err := l.wait(t)
	if err != nil {
		t.Fatal(err)
	}

	// Groups changed at the IdP show in the renewed token.
	e.op.SetGroups(cliAuditor.Username, "audit", "signoff-admins")
	renewed, err := e.client.Refresh(context.Background(), first.RefreshToken, first.Subject)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if renewed.IDToken == first.IDToken || renewed.RefreshToken == "" || renewed.RefreshToken == first.RefreshToken {
		t.Errorf("Refresh did not renew (new id token %t, rotated refresh token %t)", renewed.IDToken != first.IDToken, renewed.RefreshToken != first.RefreshToken)
	}
	if renewed.Subject != "sub-audrey" || !slices.Equal(renewed.Groups, []string{"audit", "signoff-admins"}) {
		t.Errorf("renewed tokens name %+v", renewed)
	}
	if e.op.Refreshes() != 1 {
		t.Errorf("the OP answered %d refreshes", e.op.Refreshes())
	}

	// The spent refresh token, and an answer for another subject, are
	// refused.
	if _, err := e.client.Refresh(context.Background(), first.RefreshToken, first.Subject); err == nil {
		t.Error("a spent refresh token renewed the sign-in")
	}
	if _, err := e.client.Refresh(context.Background(), renewed.RefreshToken, "sub-someone-else"); err == nil || !strings.Contains(err.Error(), "another subject") {
		t.Errorf("a renewal for another subject: %v", err)
	}
	if _, err := e.client.Refresh(context.Background(), "", first.Subject); err == nil {
		t.Error("Refresh without a refresh token succeeded")
	}
}
