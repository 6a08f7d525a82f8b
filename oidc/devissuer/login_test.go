package devissuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

var devPeople = []devissuer.Person{
	{Name: "alice", Email: "alice@example.com", Groups: []string{"sre", "audit"}},
	{Name: "carol", Email: "carol@example.com"},
}

// loginServer is a loopback server with the dev issuer at /dev/oidc, its
// login enabled for a client whose redirect URI is /link/callback on the
// same server (where signoff's link flow would be).
type loginServer struct {
	srv      *httptest.Server
	mux      *http.ServeMux
	issuer   *devissuer.Issuer
	clk      *clock.Fake
	redirect string
}

func startLogin(t *testing.T) *loginServer {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss, err := devissuer.New(srv.URL+"/dev/oidc", filepath.Join(t.TempDir(), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	redirect := srv.URL + linkflow.CallbackPath
	if err := iss.EnableLogin(devissuer.LoginOptions{RedirectURL: redirect, People: devPeople, Clock: clk}); err != nil {
		t.Fatalf("EnableLogin: %v", err)
	}
	mux.Handle("/dev/oidc/", iss.Handler())
	return &loginServer{srv: srv, mux: mux, issuer: iss, clk: clk, redirect: redirect}
}

// browser is an http.Client with a cookie jar that does not follow
// redirects, so each step can be looked at.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// authParams are a valid authorization request's parameters.
func (s *loginServer) authParams(verifier string) url.Values {
	return url.Values{
		"client_id":             {devissuer.DefaultClientID},
		"redirect_uri":          {s.redirect},
		"response_type":         {"code"},
		"scope":                 {"openid email profile groups"},
		"state":                 {"state-123"},
		"nonce":                 {"nonce-456"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, b := testenv.Do(t, c, req)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func get(t *testing.T, c *http.Client, u string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return do(t, c, req)
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, c, req)
}

var (
	pageRE = regexp.MustCompile(`name="page" value="([^"]+)"`)
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// signInPage opens the authorization request and returns the sign-in
// form's hidden fields.
func (s *loginServer) signInPage(t *testing.T, c *http.Client, params url.Values) (page, csrf string) {
	t.Helper()
	r := get(t, c, s.srv.URL+"/dev/oidc/authorize?"+params.Encode())
	if r.status != http.StatusOK {
		t.Fatalf("authorize: %d %s\n%s", r.status, r.header.Get("Location"), r.body)
	}
	p, k := pageRE.FindStringSubmatch(r.body), csrfRE.FindStringSubmatch(r.body)
	if p == nil || k == nil {
		t.Fatalf("sign-in page lacks its hidden fields:\n%s", r.body)
	}
	return p[1], k[1]
}

// callback returns the query of a redirect to the redirect URI.
func (s *loginServer) callback(t *testing.T, r response) url.Values {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, s.redirect+"?") {
		t.Fatalf("want a redirect to %s, got %d %q\n%s", s.redirect, r.status, loc, r.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Query().Get("iss"); got != s.issuer.URL() {
		t.Fatalf("iss = %q in the answer", got)
	}
	return u.Query()
}

// code runs the browser part of a sign-in as person and returns the code.
func (s *loginServer) code(t *testing.T, params url.Values, person string) string {
	t.Helper()
	c := browser(t)
	page, csrf := s.signInPage(t, c, params)
	q := s.callback(t, postForm(t, c, s.srv.URL+"/dev/oidc/authorize", url.Values{"page": {page}, "csrf": {csrf}, "person": {person}}))
	if q.Get("state") != params.Get("state") || q.Get("code") == "" {
		t.Fatalf("answer %v", q)
	}
	return q.Get("code")
}

func (s *loginServer) redeem(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	r := postForm(t, http.DefaultClient, s.srv.URL+"/dev/oidc/token", form)
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token answer Cache-Control %q", cc)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("token answer is not JSON: %d %s", r.status, r.body)
	}
	return r.status, m
}

func (s *loginServer) tokenForm(code, verifier string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.redirect},
		"code_verifier": {verifier}, "client_id": {devissuer.DefaultClientID},
	}
}

// TestLinkerLinksAtDevIssuer runs signoff's real account-link flow
// (linkflow.Linker, go-oidc discovery, x/oauth2 exchange) against the dev
// issuer: a chat account is linked by signing in as alice, and Resolve
// then vouches for alice with her groups and an MFA sign-in.
var (
	confirmIDRE   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)
	confirmCSRFRE = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]+)">`)
)

func TestLinkerLinksAtDevIssuer(t *testing.T) {
	s := startLogin(t)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "signoff.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := approvals.New(st, &policy.Policy{Actions: map[string]*policy.Action{}}, approvals.Options{Logger: slog.New(slog.DiscardHandler)})
	linker, err := linkflow.NewLinker(linkflow.LinkerOptions{
		Issuer:      s.issuer.URL(),
		ClientID:    devissuer.DefaultClientID,
		Scopes:      []string{"openid", "email", "profile", "groups"},
		RedirectURL: s.redirect,
		Store:       st,
		Links:       svc,
	})
	if err != nil {
		t.Fatal(err)
	}
	linker.Register(s.mux)
	// The chat account is alice's: its platform record carries her email.
	linker.SetDirectory("dev", linkflow.DirectoryFunc(func(context.Context, linkflow.PlatformUser) (linkflow.ChatAccount, error) {
		return linkflow.ChatAccount{Handle: "alice", Email: "alice@example.com"}, nil
	}))
	chat := linkflow.PlatformUser{Platform: "dev", Workspace: "dev", UserID: "alice"}
	ctx := context.Background()

	var lr *linkflow.LinkRequiredError
	if _, err := linker.Resolve(ctx, chat); !errors.As(err, &lr) || lr.Reason != linkflow.LinkReasonNotLinked {
		t.Fatalf("Resolve before linking: %v", err)
	}
	start, err := linker.Begin(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	// The browser: /link/start (the page naming the chat account, then
	// Continue) → the dev issuer's sign-in page.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	confirmID, confirmCSRF := confirmIDRE.FindSubmatch(body), confirmCSRFRE.FindSubmatch(body)
	if confirmID == nil || confirmCSRF == nil {
		t.Fatalf("confirmation page: %d\n%s", resp.StatusCode, body)
	}
	resp, err = c.PostForm(strings.Split(start, "?")[0], url.Values{"id": {string(confirmID[1])}, "csrf": {string(confirmCSRF[1])}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dev/oidc/authorize" || !strings.Contains(string(body), `data-person="alice"`) {
		t.Fatalf("sign-in page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	page, csrf := pageRE.FindSubmatch(body), csrfRE.FindSubmatch(body)
	if page == nil || csrf == nil {
		t.Fatalf("no form fields:\n%s", body)
	}
	// Sign in as alice → redirect to /link/callback → the linked page.
	resp, err = c.PostForm(s.srv.URL+"/dev/oidc/authorize", url.Values{"page": {string(page[1])}, "csrf": {string(csrf[1])}, "person": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != linkflow.CallbackPath || !strings.Contains(string(body), `data-outcome="linked"`) {
		t.Fatalf("after sign-in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}

	id, err := linker.Resolve(ctx, chat)
	if err != nil {
		t.Fatalf("Resolve after linking: %v", err)
	}
	if id.Issuer != s.issuer.URL() || id.Subject != "alice" || id.Email != "alice@example.com" || id.Name != "alice" ||
		!slices.Equal(id.Groups, []string{"sre", "audit"}) || !slices.Equal(id.AMR, []string{"pwd", "otp"}) || id.AuthTime.IsZero() {
		t.Fatalf("identity %+v", id)
	}
}

// TestIDTokenClaims exchanges a code with x/oauth2 and verifies the ID
// token with go-oidc, the way any relying party would.
func TestIDTokenClaims(t *testing.T) {
	s := startLogin(t)
	ctx := gooidc.ClientContext(context.Background(), s.srv.Client())
	provider, err := gooidc.NewProvider(ctx, s.issuer.URL())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta map[string]any
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"authorization_endpoint":           s.issuer.URL() + "/authorize",
		"token_endpoint":                   s.issuer.URL() + "/token",
		"jwks_uri":                         s.issuer.URL() + "/jwks",
		"code_challenge_methods_supported": "[S256]",
		"grant_types_supported":            "[authorization_code]",
		"response_types_supported":         "[code]",
	} {
		if got := fmtJSON(meta[k]); got != want {
			t.Errorf("discovery %s = %s, want %s", k, got, want)
		}
	}
	if _, ok := meta["id_token_signing_alg_values_supported"]; !ok {
		t.Error("discovery lacks id_token_signing_alg_values_supported")
	}

	verifier := oauth2.GenerateVerifier()
	params := s.authParams(verifier)
	params.Set("prompt", "login")
	params.Set("max_age", "0")
	params.Set("acr_values", "urn:dev:mfa urn:other")
	signedInAt := s.clk.Now()
	code := s.code(t, params, "alice")

	cfg := oauth2.Config{ClientID: devissuer.DefaultClientID, Endpoint: provider.Endpoint(), RedirectURL: s.redirect, Scopes: []string{"openid"}}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.Expiry.IsZero() {
		t.Errorf("token %+v", tok)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: devissuer.DefaultClientID, Now: s.clk.Now}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var c struct {
		Nonce    string   `json:"nonce"`
		AuthTime int64    `json:"auth_time"`
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		Email    string   `json:"email"`
		Name     string   `json:"name"`
		Username string   `json:"preferred_username"`
		Groups   []string `json:"groups"`
		IAT      int64    `json:"iat"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if idt.Issuer != s.issuer.URL() || idt.Subject != "alice" || !slices.Equal(idt.Audience, []string{devissuer.DefaultClientID}) ||
		c.Nonce != "nonce-456" || c.AuthTime != signedInAt.Unix() || c.IAT != signedInAt.Unix() || !slices.Equal(c.AMR, []string{"pwd", "otp"}) ||
		c.ACR != "urn:dev:mfa" || c.Email != "alice@example.com" || c.Name != "alice" || c.Username != "alice" ||
		!slices.Equal(c.Groups, []string{"sre", "audit"}) || !idt.Expiry.Equal(time.Unix(signedInAt.Unix(), 0).Add(devissuer.IDTokenTTL)) {
		t.Fatalf("ID token %+v claims %+v", idt, c)
	}

	// Without acr_values there is no acr; a person without groups gets [].
	verifier = oauth2.GenerateVerifier()
	code = s.code(t, s.authParams(verifier), "carol")
	status, m := s.redeem(t, s.tokenForm(code, verifier))
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, m)
	}
	claims := jwtClaims(t, m["id_token"].(string))
	if _, ok := claims["acr"]; ok {
		t.Errorf("acr without acr_values: %v", claims["acr"])
	}
	if g, ok := claims["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("groups of a person without groups: %#v", claims["groups"])
	}
}

func fmtJSON(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmtJSON(p)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	var m map[string]any
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAuthorizeRefusals(t *testing.T) {
	s := startLogin(t)
	verifier := oauth2.GenerateVerifier()

	// Wrong client or redirect URI: a page, never a redirect.
	for name, mod := range map[string]func(url.Values){
		"wrong client_id":      func(v url.Values) { v.Set("client_id", "someone-else") },
		"no client_id":         func(v url.Values) { v.Del("client_id") },
		"wrong redirect_uri":   func(v url.Values) { v.Set("redirect_uri", s.srv.URL+"/elsewhere") },
		"redirect_uri + slash": func(v url.Values) { v.Set("redirect_uri", s.redirect+"/") },
		"no redirect_uri":      func(v url.Values) { v.Del("redirect_uri") },
	} {
		p := s.authParams(verifier)
		mod(p)
		r := get(t, browser(t), s.srv.URL+"/dev/oidc/authorize?"+p.Encode())
		if r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.body, `id="error"`) {
			t.Errorf("%s: %d %q", name, r.status, r.header.Get("Location"))
		}
	}

	// Other problems go back to the client as error=….
	for name, tc := range map[string]struct {
		mod  func(url.Values)
		want string
	}{
		"no PKCE":             {func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, "invalid_request"},
		"plain PKCE":          {func(v url.Values) { v.Set("code_challenge", verifier); v.Set("code_challenge_method", "plain") }, "invalid_request"},
		"PKCE without method": {func(v url.Values) { v.Del("code_challenge_method") }, "invalid_request"},
		"malformed challenge": {func(v url.Values) { v.Set("code_challenge", "short") }, "invalid_request"},
		"no openid scope":     {func(v url.Values) { v.Set("scope", "email") }, "invalid_scope"},
		"implicit flow":       {func(v url.Values) { v.Set("response_type", "id_token") }, "unsupported_response_type"},
		"no nonce":            {func(v url.Values) { v.Del("nonce") }, "invalid_request"},
		"prompt=none":         {func(v url.Values) { v.Set("prompt", "none") }, "login_required"},
		"bad max_age":         {func(v url.Values) { v.Set("max_age", "-1") }, "invalid_request"},
		"repeated parameter":  {func(v url.Values) { v.Add("scope", "openid") }, "invalid_request"},
		"request object":      {func(v url.Values) { v.Set("request", "eyJ.x.y") }, "request_not_supported"},
	} {
		p := s.authParams(verifier)
		tc.mod(p)
		r := get(t, browser(t), s.srv.URL+"/dev/oidc/authorize?"+p.Encode())
		u, _ := url.Parse(r.header.Get("Location"))
		if r.status != http.StatusSeeOther || u == nil || !strings.HasPrefix(u.String(), s.redirect+"?") ||
			u.Query().Get("error") != tc.want || u.Query().Get("state") != "state-123" || u.Query().Get("code") != "" {
			t.Errorf("%s: %d %q, want error=%s", name, r.status, r.header.Get("Location"), tc.want)
		}
	}
	// No state: refused, and no state is made up.
	p := s.authParams(verifier)
	p.Del("state")
	r := get(t, browser(t), s.srv.URL+"/dev/oidc/authorize?"+p.Encode())
	if u, _ := url.Parse(r.header.Get("Location")); r.status != http.StatusSeeOther || u.Query().Get("error") != "invalid_request" || u.Query().Has("state") {
		t.Errorf("no state: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestSignInPageIsSafe(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	iss, err := devissuer.New(srv.URL+"/dev/oidc", filepath.Join(t.TempDir(), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	redirect := "http://localhost:9999/link/callback"
	if err := iss.EnableLogin(devissuer.LoginOptions{RedirectURL: redirect, People: []devissuer.Person{
		{Name: `<script>alert(1)</script>`, Email: `"><img src=x>`, Groups: []string{"<b>sre</b>"}},
	}}); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/dev/oidc/", iss.Handler())
	s := &loginServer{srv: srv, issuer: iss, redirect: redirect}
	r := get(t, browser(t), srv.URL+"/dev/oidc/authorize?"+s.authParams(oauth2.GenerateVerifier()).Encode())
	if r.status != http.StatusOK {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img") || strings.Contains(r.body, "<b>sre") {
		t.Fatalf("people rendered unescaped:\n%s", r.body)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self' http://localhost:9999;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers %v", r.header)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		cookie = c
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/dev/oidc/authorize" {
		t.Errorf("browser cookie %+v", cookie)
	}
}

func TestSignInFormRefusesForgeries(t *testing.T) {
	s := startLogin(t)
	verifier := oauth2.GenerateVerifier()
	c := browser(t)
	page, csrf := s.signInPage(t, c, s.authParams(verifier))
	post := func(c *http.Client, form url.Values) response {
		return postForm(t, c, s.srv.URL+"/dev/oidc/authorize", form)
	}
	// A forged token.
	if r := post(c, url.Values{"page": {page}, "csrf": {strings.Repeat("0", 64)}, "person": {"alice"}}); r.status != http.StatusForbidden || r.header.Get("Location") != "" {
		t.Fatalf("forged CSRF token: %d %q", r.status, r.header.Get("Location"))
	}
	// The right token, from another browser (another site cannot read the
	// page, and its browser lacks this one's cookie).
	other := browser(t)
	s.signInPage(t, other, s.authParams(verifier)) // it has a cookie of its own
	if r := post(other, url.Values{"page": {page}, "csrf": {csrf}, "person": {"alice"}}); r.status != http.StatusForbidden {
		t.Fatalf("token from another browser: %d", r.status)
	}
	if r := post(&http.Client{CheckRedirect: c.CheckRedirect}, url.Values{"page": {page}, "csrf": {csrf}, "person": {"alice"}}); r.status != http.StatusForbidden {
		t.Fatalf("no cookie: %d", r.status)
	}
	// Someone not on the list.
	if r := post(c, url.Values{"page": {page}, "csrf": {csrf}, "person": {"mallory"}}); r.status != http.StatusBadRequest {
		t.Fatalf("unknown person: %d", r.status)
	}
	// The page was used up by that answer.
	if r := post(c, url.Values{"page": {page}, "csrf": {csrf}, "person": {"alice"}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "expired") {
		t.Fatalf("page reused: %d", r.status)
	}
	// Cancel answers access_denied with the state.
	page, csrf = s.signInPage(t, c, s.authParams(verifier))
	q := s.callback(t, post(c, url.Values{"page": {page}, "csrf": {csrf}, "cancel": {"1"}}))
	if q.Get("error") != "access_denied" || q.Get("state") != "state-123" || q.Has("code") {
		t.Fatalf("cancel: %v", q)
	}
	// A page expires.
	page, csrf = s.signInPage(t, c, s.authParams(verifier))
	s.clk.Advance(devissuer.SignInPageTTL)
	if r := post(c, url.Values{"page": {page}, "csrf": {csrf}, "person": {"alice"}}); r.status != http.StatusBadRequest {
		t.Fatalf("expired page: %d", r.status)
	}
}

func TestTokenRefusals(t *testing.T) {
	s := startLogin(t)
	want := func(t *testing.T, what string, status int, m map[string]any, wantStatus int, wantErr string) {
		t.Helper()
		if status != wantStatus || m["error"] != wantErr || m["id_token"] != nil {
			t.Errorf("%s: %d %v, want %d %s", what, status, m, wantStatus, wantErr)
		}
	}
	fresh := func() (code, verifier string) {
		verifier = oauth2.GenerateVerifier()
		return s.code(t, s.authParams(verifier), "alice"), verifier
	}

	t.Run("reused code", func(t *testing.T) {
		code, verifier := fresh()
		if status, m := s.redeem(t, s.tokenForm(code, verifier)); status != http.StatusOK || m["id_token"] == nil || m["token_type"] != "Bearer" || m["expires_in"] == nil || m["access_token"] == nil {
			t.Fatalf("first redemption: %d %v", status, m)
		}
		status, m := s.redeem(t, s.tokenForm(code, verifier))
		want(t, "second redemption", status, m, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("wrong verifier", func(t *testing.T) {
		code, verifier := fresh()
		status, m := s.redeem(t, s.tokenForm(code, oauth2.GenerateVerifier()))
		want(t, "wrong verifier", status, m, http.StatusBadRequest, "invalid_grant")
		// The failed attempt used the code up.
		status, m = s.redeem(t, s.tokenForm(code, verifier))
		want(t, "right verifier after a wrong one", status, m, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("no verifier", func(t *testing.T) {
		code, _ := fresh()
		f := s.tokenForm(code, "")
		status, m := s.redeem(t, f)
		want(t, "no verifier", status, m, http.StatusBadRequest, "invalid_request")
	})
	t.Run("expired code", func(t *testing.T) {
		code, verifier := fresh()
		s.clk.Advance(devissuer.CodeTTL)
		status, m := s.redeem(t, s.tokenForm(code, verifier))
		want(t, "expired code", status, m, http.StatusBadRequest, "invalid_grant")
	})
	// A form with one field changed.
	for _, tc := range []struct {
		name, field, value string
		status             int
		err                string
		// codeKept: the refusal does not use the code up.
		codeKept bool
	}{
		{"wrong redirect_uri", "redirect_uri", s.srv.URL + "/elsewhere", http.StatusBadRequest, "invalid_grant", false},
		{"wrong client_id", "client_id", "someone-else", http.StatusUnauthorized, "invalid_client", true},
		{"client secret", "client_secret", "guess", http.StatusUnauthorized, "invalid_client", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, verifier := fresh()
			f := s.tokenForm(code, verifier)
			f.Set(tc.field, tc.value)
			status, m := s.redeem(t, f)
			want(t, tc.name, status, m, tc.status, tc.err)
			if !tc.codeKept {
				return
			}
			if status, m := s.redeem(t, s.tokenForm(code, verifier)); status != http.StatusOK {
				t.Fatalf("redeem after a refused client: %d %v", status, m)
			}
		})
	}
	t.Run("basic auth", func(t *testing.T) {
		// x/oauth2 first tries the client id as the Basic user with an
		// empty password; that must work for a public client.
		code, verifier := fresh()
		f := s.tokenForm(code, verifier)
		f.Del("client_id")
		redeem := func(password string) response {
			req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/dev/oidc/token", strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(devissuer.DefaultClientID, password)
			return do(t, http.DefaultClient, req)
		}
		if r := redeem(""); r.status != http.StatusOK {
			t.Fatalf("basic auth: %d %s", r.status, r.body)
		}
		if r := redeem("secret"); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("basic auth with a secret: %d %s", r.status, r.body)
		}
	})
	t.Run("other grant", func(t *testing.T) {
		status, m := s.redeem(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {devissuer.DefaultClientID}})
		want(t, "refresh grant", status, m, http.StatusBadRequest, "unsupported_grant_type")
	})
	t.Run("unknown code", func(t *testing.T) {
		status, m := s.redeem(t, s.tokenForm("made-up", oauth2.GenerateVerifier()))
		want(t, "unknown code", status, m, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("GET", func(t *testing.T) {
		if r := get(t, http.DefaultClient, s.srv.URL+"/dev/oidc/token"); r.status != http.StatusMethodNotAllowed {
			t.Fatalf("GET /token: %d", r.status)
		}
	})
}

func TestLoginEndpointsNeedEnableLogin(t *testing.T) {
	d := startDev(t, filepath.Join(t.TempDir(), "k.pem"))
	for _, p := range []string{"/dev/oidc/authorize", "/dev/oidc/token"} {
		if r := get(t, http.DefaultClient, d.srv.URL+p); r.status != http.StatusNotFound {
			t.Errorf("%s without login: %d", p, r.status)
		}
	}
	r := get(t, http.DefaultClient, d.srv.URL+"/dev/oidc/.well-known/openid-configuration")
	if strings.Contains(r.body, "authorization_endpoint") || strings.Contains(r.body, "token_endpoint") {
		t.Errorf("discovery advertises endpoints it does not serve: %s", r.body)
	}
}

func TestEnableLoginChecksOptions(t *testing.T) {
	iss, err := devissuer.New("http://127.0.0.1:1/dev/oidc", filepath.Join(t.TempDir(), "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	good := "http://127.0.0.1:1/link/callback"
	for name, o := range map[string]devissuer.LoginOptions{
		"remote redirect": {RedirectURL: "https://signoff.example.com/link/callback", People: devPeople},
		"relative":        {RedirectURL: "/link/callback", People: devPeople},
		"fragment":        {RedirectURL: good + "#x", People: devPeople},
		"no people":       {RedirectURL: good},
		"nameless":        {RedirectURL: good, People: []devissuer.Person{{Email: "x@example.com"}}},
		"twice listed":    {RedirectURL: good, People: []devissuer.Person{{Name: "a"}, {Name: "a"}}},
		"client id space": {ClientID: "a b", RedirectURL: good, People: devPeople},
	} {
		if err := iss.EnableLogin(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := iss.EnableLogin(devissuer.LoginOptions{RedirectURL: good, People: devPeople}); err != nil {
		t.Fatal(err)
	}
	if err := iss.EnableLogin(devissuer.LoginOptions{RedirectURL: good, People: devPeople}); err == nil {
		t.Error("second EnableLogin accepted")
	}
	// Minting for CI keeps working.
	if _, err := iss.Mint("dev-user", "signoff", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
}
