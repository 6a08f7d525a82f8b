package oidc

// The command line's sign-in (`signoff login`): an OAuth 2.0 native app
// (RFC 8252) using the authorization code flow with PKCE at the company
// IdP, as a public client (idp.cli_client_id, no secret). The browser comes
// back to a listener on the loopback interface at an ephemeral port
// (http://127.0.0.1:PORT/callback, RFC 8252 §7.3), which checks state,
// redeems the code and verifies the ID token (signature, issuer, audience =
// the CLI client, expiry, nonce). The ID token is what the command line
// then presents to signoff as a bearer token; signoff accepts it on admin
// and auditor endpoints only (TrustedIssuer.Login).

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// CLICallbackPath is the path of the loopback redirect URI
// (http://127.0.0.1:PORT/callback). Register http://127.0.0.1/callback
// for the CLI client at the IdP; RFC 8252 §7.3 has the IdP accept any
// port.
const CLICallbackPath = "/callback"

// CLIClient signs a person in at an OpenID Provider from a command line,
// and renews that sign-in with a refresh token.
type CLIClient struct {
	// Issuer is the IdP's issuer URL (https, or http on a loopback host).
	Issuer string
	// ClientID is the public client registered for the command line.
	ClientID string
	// Scopes are requested at sign-in ("openid" is added when missing).
	// With offline_access the IdP may issue a refresh token.
	Scopes []string
	// GroupsClaim names the ID token claim listing the person's groups
	// (CLITokens.Groups); optional.
	GroupsClaim string
	// HTTPClient talks to the IdP. Default: a client with a 15-second
	// timeout.
	HTTPClient *http.Client
	// Now is the clock for token times. Default: time.Now.
	Now func() time.Time
}

// CLITokens is a verified sign-in.
type CLITokens struct {
	// IDToken is the verified ID token, the bearer token to present.
	IDToken string
	// RefreshToken renews the sign-in; empty when the IdP issued none.
	RefreshToken string
	// Expiry is the ID token's exp.
	Expiry time.Time
	// Subject, Email, Name and Groups are read from the ID token.
	Subject, Email, Name string
	Groups               []string
}

// CLILoginOptions are the callbacks of one sign-in.
type CLILoginOptions struct {
	// ShowURL receives the authorization URL once the loopback listener
	// is ready: print it and, if wanted, open a browser there. Required.
	ShowURL func(authURL string)
	// Warn, when set, is told about browser callbacks that do not belong
	// to this sign-in (they are refused and the sign-in goes on waiting).
	Warn func(msg string)
}

func (c *CLIClient) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{Timeout: idtoken.FetchTimeout}
}

func (c *CLIClient) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CLIClient) scopes() []string {
	if slices.Contains(c.Scopes, gooidc.ScopeOpenID) {
		return c.Scopes
	}
	return append([]string{gooidc.ScopeOpenID}, c.Scopes...)
}

// cliProvider is the discovered IdP, ready for one sign-in or refresh.
type cliProvider struct {
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	ctx      context.Context // carries the HTTP client
}

func (c *CLIClient) discover(ctx context.Context, redirectURL string) (*cliProvider, error) {
	if err := idtoken.CheckIssuerURL(c.Issuer); err != nil {
		return nil, fmt.Errorf("oidc: the sign-in issuer: %w", err)
	}
	if c.ClientID == "" {
		return nil, errors.New("oidc: no client id for the command line's sign-in")
	}
	// go-oidc keeps this context for key downloads: it lives as long as
	// the sign-in or refresh does.
	hctx := gooidc.ClientContext(ctx, c.httpClient())
	p, err := gooidc.NewProvider(hctx, c.Issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("the discovery document of %s names issuer %q; the server's idp.issuer must match it exactly (watch for a trailing slash)", c.Issuer, mismatch.Discovered)
		}
		return nil, fmt.Errorf("cannot reach the identity provider %s: %s", c.Issuer, idtoken.CauseText(idtoken.SafeErr(err)))
	}
	var meta struct {
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("reading the discovery document of %s: %w", c.Issuer, err)
	}
	if len(meta.CodeChallengeMethods) > 0 && !slices.Contains(meta.CodeChallengeMethods, "S256") {
		return nil, fmt.Errorf("%s does not support PKCE with S256 (code_challenge_methods_supported: %v); signoff login requires it", c.Issuer, meta.CodeChallengeMethods)
	}
	ep := p.Endpoint()
	if ep.AuthURL == "" || ep.TokenURL == "" {
		return nil, fmt.Errorf("the discovery document of %s lacks an authorization or token endpoint", c.Issuer)
	}
	// A public client sends its id in the form and no secret.
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &cliProvider{
		oauth: &oauth2.Config{ClientID: c.ClientID, Endpoint: ep, RedirectURL: redirectURL, Scopes: c.scopes()},
		verifier: p.Verifier(&gooidc.Config{
			ClientID:             c.ClientID,
			SupportedSigningAlgs: idtoken.AllowedAlgs,
			Now:                  c.now,
		}),
		ctx: context.WithValue(hctx, oauth2.HTTPClient, c.httpClient()),
	}, nil
}

// callbackResult is what the loopback listener learned.
type callbackResult struct {
	tokens *CLITokens
	err    error
}

// Login runs one sign-in: it listens on 127.0.0.1 at an ephemeral port,
// hands the authorization URL to o.ShowURL, and waits for the browser to
// come back (or ctx to end). The first callback carrying this sign-in's
// state ends the wait, with the verified tokens or the reason there are
// none; callbacks with another state are refused and ignored.
func (c *CLIClient) Login(ctx context.Context, o CLILoginOptions) (*CLITokens, error) {
	if o.ShowURL == nil {
		return nil, errors.New("oidc: CLILoginOptions.ShowURL is required")
	}
	// RFC 8252 §8.3: listen on the loopback interface only.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen on the loopback interface for the browser's return: %w", err)
	}
	defer ln.Close()
	hostPort := ln.Addr().String()
	redirectURL := "http://" + hostPort + CLICallbackPath
	p, err := c.discover(ctx, redirectURL)
	if err != nil {
		return nil, err
	}
	state, err := idtoken.RandomToken()
	if err != nil {
		return nil, err
	}
	nonce, err := idtoken.RandomToken()
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", nonce),
	}
	if slices.Contains(p.oauth.Scopes, "offline_access") {
		// OpenID Connect Core §11: a provider may ignore offline_access
		// (and issue no refresh token) unless consent is asked for.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	authURL := p.oauth.AuthCodeURL(state, opts...)

	results := make(chan callbackResult, 1)
	var mu sync.Mutex
	answered := false
	warn := func(msg string) {
		if o.Warn != nil {
			o.Warn(msg)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CLICallbackPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Host != hostPort {
			// Not the address the IdP was told: a page elsewhere reaching
			// the port under another name.
			cliPage(w, http.StatusBadRequest, "Wrong address", "This address does not take sign-ins.")
			return
		}
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			warn("refused a browser callback that does not belong to this sign-in (its state does not match); still waiting")
			cliPage(w, http.StatusBadRequest, "Not this sign-in", "This answer does not belong to the signoff login waiting here (its state does not match). Nothing was signed in. Use the URL signoff login printed.")
			return
		}
		mu.Lock()
		done := answered
		answered = true
		mu.Unlock()
		if done {
			cliPage(w, http.StatusBadRequest, "Already answered", "This sign-in was already answered; run signoff login again if it failed.")
			return
		}
		res := c.complete(ctx, p, q.Get("code"), q.Get("error"), q.Get("error_description"), verifier, nonce)
		if res.err != nil {
			cliPage(w, http.StatusForbidden, "Sign-in failed", "signoff login failed: "+res.err.Error()+". Run signoff login again.")
		} else {
			who := res.tokens.Email
			if who == "" {
				who = res.tokens.Subject
			}
			cliPage(w, http.StatusOK, "Signed in", "You are signed in to signoff as "+who+". You can close this window and go back to the terminal.")
		}
		results <- res
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	o.ShowURL(authURL)
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("no sign-in completed: %w", ctx.Err())
	case res := <-results:
		return res.tokens, res.err
	}
}

// complete turns the browser's answer into verified tokens.
func (c *CLIClient) complete(ctx context.Context, p *cliProvider, code, errCode, errDesc, verifier, nonce string) callbackResult {
	if errCode != "" {
		msg := "the identity provider refused the sign-in: " + idtoken.Quote(errCode)
		if errDesc != "" {
			msg += " (" + idtoken.Quote(errDesc) + ")"
		}
		return callbackResult{err: errors.New(msg)}
	}
	if code == "" {
		return callbackResult{err: errors.New("the identity provider sent the browser back without a code")}
	}
	ctx, cancel := context.WithTimeout(ctx, idtoken.FetchTimeout)
	defer cancel()
	tok, err := p.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, c.httpClient()), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return callbackResult{err: fmt.Errorf("redeeming the sign-in code at %s failed: %s", c.Issuer, idtoken.CauseText(idtoken.SafeErr(err)))}
	}
	out, err := c.verify(p, tok, nonce, "")
	return callbackResult{tokens: out, err: err}
}

// Refresh renews a sign-in with its refresh token. The new ID token must
// name subject. The returned RefreshToken is the one to keep (the IdP may
// rotate it).
func (c *CLIClient) Refresh(ctx context.Context, refreshToken, subject string) (*CLITokens, error) {
	if refreshToken == "" {
		return nil, errors.New("there is no refresh token")
	}
	ctx, cancel := context.WithTimeout(ctx, idtoken.FetchTimeout)
	defer cancel()
	p, err := c.discover(ctx, "")
	if err != nil {
		return nil, err
	}
	tok, err := p.oauth.TokenSource(p.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, fmt.Errorf("the identity provider %s did not renew the sign-in: %s", c.Issuer, idtoken.CauseText(idtoken.SafeErr(err)))
	}
	return c.verify(p, tok, "", subject)
}

// verify checks the token response's ID token: signature, issuer,
// audience (this client), expiry and, for a sign-in, the nonce; for a
// refresh, the subject.
func (c *CLIClient) verify(p *cliProvider, tok *oauth2.Token, nonce, subject string) (*CLITokens, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("the identity provider's answer holds no ID token")
	}
	idt, err := p.verifier.Verify(p.ctx, raw)
	if err != nil {
		var expired *gooidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, fmt.Errorf("the ID token expired at %s (check this machine's clock)", idtoken.FormatTime(expired.Expiry))
		}
		return nil, fmt.Errorf("the ID token does not verify: %s", idtoken.CauseText(err))
	}
	if subject == "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, errors.New("the ID token's nonce does not match this sign-in: it was issued for another one")
	}
	if subject != "" && idt.Subject != subject {
		return nil, errors.New("the identity provider renewed the sign-in for another subject")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, errors.New("the ID token's at_hash does not match the access token")
		}
	}
	var payload json.RawMessage
	if err := idt.Claims(&payload); err != nil {
		return nil, fmt.Errorf("the ID token's claims cannot be read: %w", err)
	}
	m, err := idtoken.Decode(payload)
	if err != nil {
		return nil, fmt.Errorf("the ID token's claims cannot be read: %w", err)
	}
	if len(idt.Audience) > 1 {
		if azp, _ := m["azp"].(string); azp != c.ClientID {
			return nil, fmt.Errorf("the ID token names several audiences but its authorized party is %s, not %q", idtoken.Quote(azp), c.ClientID)
		}
	}
	if idt.Subject == "" {
		return nil, errors.New("the ID token has no subject")
	}
	out := &CLITokens{IDToken: raw, RefreshToken: tok.RefreshToken, Expiry: idt.Expiry, Subject: idt.Subject}
	out.Email, _ = m["email"].(string)
	out.Name, _ = m["name"].(string)
	if c.GroupsClaim != "" {
		out.Groups = idtoken.StringList(m[c.GroupsClaim])
	}
	return out, nil
}

var cliPageTemplate = template.Must(template.New("cli").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>signoff login: {{.Title}}</title></head>
<body><main data-outcome="{{.Outcome}}"><h1>{{.Title}}</h1><p id="result">{{.Text}}</p></main></body></html>`))

// cliPage answers the browser with a small page (no script, nothing
// loaded from elsewhere).
func cliPage(w http.ResponseWriter, status int, title, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	outcome := "error"
	if status == http.StatusOK {
		outcome = "signed-in"
	}
	_ = cliPageTemplate.Execute(w, map[string]string{"Title": title, "Text": text, "Outcome": outcome})
}
