package linkflow

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// idpClient is the approvers' OpenID Provider as signoff's link flow sees
// it: discovered lazily, then an oauth2 config and an ID token verifier.
type idpClient struct {
	issuer       string
	clientID     string
	clientSecret string
	redirectURL  string
	scopes       []string
	groupsClaim  string
	personClaims []string
	httpClient   *http.Client
	clock        clock.Clock
	retry        time.Duration
	log          *slog.Logger

	// sem serializes discovery (a channel, so waiting honours ctx).
	sem         chan struct{}
	mu          sync.Mutex
	disc        *discovered
	lastErr     error
	lastAttempt time.Time
}

type discovered struct {
	provider *gooidc.Provider
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

// idpRefusal is the IdP saying no (as opposed to being unreachable): an
// OAuth error response, or an answer that fails verification. reason is
// safe to show and log: it never holds a token.
type idpRefusal struct {
	reason string
	err    error
}

func (e *idpRefusal) Error() string { return e.reason }
func (e *idpRefusal) Unwrap() error { return e.err }

// unavailable wraps a network-level failure as ErrIdPUnavailable.
func (c *idpClient) unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s at %s failed: %s; try again in a minute", ErrIdPUnavailable, what, c.issuer, idtoken.CauseText(idtoken.SafeErr(err)))
}

// get returns the discovered IdP, discovering it when needed. A failure is
// remembered for retry; meanwhile callers get it without network I/O.
func (c *idpClient) get(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	if d := c.disc; d != nil {
		c.mu.Unlock()
		return d, nil
	}
	if c.lastErr != nil && c.clock.Now().Before(c.lastAttempt.Add(c.retry)) {
		err := c.lastErr
		c.mu.Unlock()
		return nil, err
	}
	c.mu.Unlock()

	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("oidc: waiting for discovery of %s: %w", c.issuer, ctx.Err())
	}
	defer func() { <-c.sem }()
	c.mu.Lock()
	if d := c.disc; d != nil { // discovered while we waited
		c.mu.Unlock()
		return d, nil
	}
	c.mu.Unlock()

	d, err := c.discover(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("oidc: discovery of %s: %w", c.issuer, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastAttempt = c.clock.Now()
	if err != nil {
		c.lastErr = err
		c.log.Warn("identity provider discovery failed; sign-ins and refreshes are refused until it succeeds", "issuer", c.issuer, "retry_in", c.retry, "err", err)
		return nil, err
	}
	c.disc, c.lastErr = d, nil
	c.log.Info("identity provider discovered", "issuer", c.issuer)
	return d, nil
}

func (c *idpClient) discover(ctx context.Context) (*discovered, error) {
	dctx, cancel := context.WithTimeout(ctx, idtoken.FetchTimeout)
	defer cancel()
	// go-oidc keeps this context for key set downloads (it ignores its
	// cancellation); it carries our HTTP client.
	p, err := gooidc.NewProvider(gooidc.ClientContext(dctx, c.httpClient), c.issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("%w: the discovery document of %s names issuer %q; idp.issuer must match it exactly (watch for a trailing slash)", ErrIdPUnavailable, c.issuer, mismatch.Discovered)
		}
		return nil, c.unavailable("discovery", err)
	}
	var meta struct {
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("%w: reading the discovery document of %s: %w", ErrIdPUnavailable, c.issuer, err)
	}
	if len(meta.CodeChallengeMethods) > 0 && !slices.Contains(meta.CodeChallengeMethods, "S256") {
		return nil, fmt.Errorf("%w: %s does not support PKCE with S256 (code_challenge_methods_supported: %v); signoff requires it", ErrIdPUnavailable, c.issuer, meta.CodeChallengeMethods)
	}
	if p.Endpoint().AuthURL == "" || p.Endpoint().TokenURL == "" {
		return nil, fmt.Errorf("%w: the discovery document of %s lacks an authorization or token endpoint", ErrIdPUnavailable, c.issuer)
	}
	return &discovered{
		provider: p,
		oauth: &oauth2.Config{
			ClientID:     c.clientID,
			ClientSecret: c.clientSecret,
			Endpoint:     p.Endpoint(),
			RedirectURL:  c.redirectURL,
			Scopes:       c.scopes,
		},
		verifier: p.Verifier(&gooidc.Config{
			ClientID:             c.clientID,
			SupportedSigningAlgs: idtoken.AllowedAlgs,
			Now:                  c.clock.Now,
		}),
	}, nil
}

// authParams are the extra parameters of one authorization request.
type authParams struct {
	state, nonce, verifier string
	// stepUp asks for a fresh login: prompt=login, max_age and acr_values.
	stepUp    bool
	maxAge    time.Duration
	acrValues []string
}

// authURL is where the browser goes to sign in.
func (d *discovered) authURL(p authParams) string {
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(p.verifier),
		oauth2.SetAuthURLParam("nonce", p.nonce),
	}
	if !p.stepUp && slices.Contains(d.oauth.Scopes, "offline_access") {
		// OpenID Connect Core §11: a provider may ignore offline_access
		// (and issue no refresh token) unless consent is asked for.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	if p.stepUp {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"),
			oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(p.maxAge/time.Second), 10)))
		if len(p.acrValues) > 0 {
			opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(p.acrValues, " ")))
		}
	}
	return d.oauth.AuthCodeURL(p.state, opts...)
}

// idClaims is what signoff takes from an ID token (or userinfo).
type idClaims struct {
	Issuer            string
	Subject           string
	Email             string
	Name              string
	PreferredUsername string
	Groups            []string
	AuthTime          time.Time
	ACR               string
	AMR               []string
	// EmailVerified is the email_verified claim; nil when absent.
	EmailVerified *bool
	// OID is Microsoft Entra ID's object id claim (oid), if sent.
	OID string
	// PersonClaims holds the values of the claims named in
	// idp.person_claims that the answer carried: a string claim's value,
	// or every string of an array claim (a multi-valued attribute).
	PersonClaims map[string][]string
}

// asIdentity is the identity the claims vouch for, as verified at
// verifiedAt.
func (c idClaims) asIdentity(verifiedAt time.Time, assumeEmailVerified bool) identity.Identity {
	return identity.Identity{
		Issuer: c.Issuer, Subject: c.Subject, Email: c.Email, Name: c.Name, PreferredUsername: c.PreferredUsername,
		Groups: c.Groups, PersonClaims: c.PersonClaims, VerifiedAt: verifiedAt,
		AuthTime: c.AuthTime, ACR: c.ACR, AMR: c.AMR,
		EmailUnverified: c.Email != "" && !vouched(c, assumeEmailVerified),
	}
}

// signInResult is a verified code exchange.
type signInResult struct {
	claims       idClaims
	refreshToken string
}

func (c *idpClient) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.httpClient)
}

// exchange redeems an authorization code with its PKCE verifier and
// verifies the ID token (signature, issuer, audience, expiry, nonce,
// azp, at_hash).
func (c *idpClient) exchange(ctx context.Context, d *discovered, code, verifier, nonce string) (*signInResult, error) {
	tok, err := d.oauth.Exchange(c.httpContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, c.tokenEndpointError("exchanging the sign-in code", err)
	}
	claims, err := c.verifyIDToken(ctx, d, tok, true, nonce)
	if err != nil {
		return nil, err
	}
	return &signInResult{claims: *claims, refreshToken: tok.RefreshToken}, nil
}

// refresh uses a refresh token and returns the confirmed claims (which
// must be subject's) and the refresh token to keep (rotated or not).
func (c *idpClient) refresh(ctx context.Context, refreshToken, subject string) (*signInResult, error) {
	d, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := d.oauth.TokenSource(c.httpContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, c.tokenEndpointError("refreshing the sign-in", err)
	}
	claims, err := c.verifyIDToken(ctx, d, tok, false, "")
	if err != nil {
		return nil, err
	}
	if claims.Subject != subject {
		return nil, &idpRefusal{reason: "the identity provider answered the refresh for another subject"}
	}
	return &signInResult{claims: *claims, refreshToken: tok.RefreshToken}, nil
}

// tokenEndpointError sorts a token endpoint failure into a refusal by the
// IdP (an OAuth error from a 4xx answer: invalid_grant and the like) and
// unavailability (network, 5xx, or signoff's own client credentials being
// refused, which is the operator's to fix, not the person's).
func (c *idpClient) tokenEndpointError(what string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return c.unavailable(what, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	switch {
	case status >= 500 || status == 0 || status == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s at %s failed with HTTP %d; try again in a minute", ErrIdPUnavailable, what, c.issuer, status)
	case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client":
		c.log.Error("the identity provider refused signoff's client credentials: check idp.client_id and idp.client_secret", "issuer", c.issuer, "error", re.ErrorCode)
		return fmt.Errorf("%w: the identity provider refused signoff's client credentials (%s); the operator must check idp.client_id and idp.client_secret", ErrIdPUnavailable, re.ErrorCode)
	}
	code := re.ErrorCode
	if code == "" {
		code = fmt.Sprintf("HTTP %d", status)
	}
	reason := fmt.Sprintf("%s was refused by the identity provider: %s", what, idtoken.Quote(code))
	if re.ErrorDescription != "" {
		reason += " (" + idtoken.Quote(re.ErrorDescription) + ")"
	}
	return &idpRefusal{reason: reason, err: errors.New(code)}
}

// verifyIDToken verifies the token response's ID token and reads its
// claims. fresh is true for a code exchange (an ID token is required and
// its nonce must match); a refresh response may lack one, then userinfo
// supplies the claims.
func (c *idpClient) verifyIDToken(ctx context.Context, d *discovered, tok *oauth2.Token, fresh bool, nonce string) (*idClaims, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		if fresh {
			return nil, &idpRefusal{reason: "the identity provider's answer holds no ID token (is \"openid\" among idp.scopes?)"}
		}
		return c.userinfo(ctx, d, tok, nil)
	}
	idt, err := d.verifier.Verify(gooidc.ClientContext(ctx, c.httpClient), raw)
	if err != nil {
		var expired *gooidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, &idpRefusal{reason: fmt.Sprintf("the ID token expired at %s (check the clocks of signoff and the identity provider)", idtoken.FormatTime(expired.Expiry)), err: err}
		}
		if ctx.Err() == nil && isNetErr(err) {
			return nil, c.unavailable("fetching the signing keys", err)
		}
		return nil, &idpRefusal{reason: "the ID token does not verify: " + idtoken.CauseText(err), err: err}
	}
	if fresh && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, &idpRefusal{reason: "the ID token's nonce does not match this sign-in: it was issued for another sign-in"}
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, &idpRefusal{reason: "the ID token's at_hash does not match the access token", err: err}
		}
	}
	m, err := decodeClaims(idt.Claims, "the ID token's claims")
	if err != nil {
		return nil, err
	}
	if len(idt.Audience) > 1 {
		if azp, _ := m["azp"].(string); azp != c.clientID {
			return nil, &idpRefusal{reason: fmt.Sprintf("the ID token names several audiences but its authorized party is %s, not signoff's client id", idtoken.Quote(azp))}
		}
	}
	claims, err := c.readClaims(m)
	if err != nil {
		return nil, err
	}
	claims.Issuer = idt.Issuer
	if _, ok := m[c.groupsClaim]; !ok {
		// Some providers put groups only in userinfo.
		return c.userinfo(ctx, d, tok, claims)
	}
	return claims, nil
}

// readClaims maps verified claims to idClaims.
func (c *idpClient) readClaims(m map[string]any) (*idClaims, error) {
	out := &idClaims{}
	out.Issuer, _ = m["iss"].(string)
	out.Subject, _ = m["sub"].(string)
	if out.Subject == "" {
		return nil, &idpRefusal{reason: "the identity provider's answer has no subject (sub)"}
	}
	out.Email, _ = m["email"].(string)
	out.Name, _ = m["name"].(string)
	out.PreferredUsername, _ = m["preferred_username"].(string)
	out.Groups = idtoken.StringList(m[c.groupsClaim])
	out.ACR, _ = m["acr"].(string)
	out.AMR = idtoken.StringList(m["amr"])
	out.OID, _ = m["oid"].(string)
	if v, ok := m["email_verified"]; ok && v != nil {
		out.EmailVerified = boolClaim(v)
		if out.EmailVerified == nil {
			// There but neither true nor false (a number, a list, a
			// word): not vouched for, and not absent either, so neither
			// xms_edov nor idp.email_verified: assumed stands in.
			out.EmailVerified = new(bool)
		}
	} else {
		// Microsoft Entra ID sends no email_verified; its optional claim
		// xms_edov says whether the email's domain is one the tenant
		// verified owning.
		out.EmailVerified = boolClaim(m["xms_edov"])
	}
	for _, name := range c.personClaims {
		vals, err := idtoken.PersonValues(m[name])
		if err != nil {
			return nil, &idpRefusal{reason: fmt.Sprintf("the identity provider's %q claim (idp.person_claims) %s; signoff refuses the answer rather than leave out a value that could name the person: ask the IdP's administrator to send fewer values in that claim, or name another claim", name, err), err: err}
		}
		if len(vals) > 0 {
			if out.PersonClaims == nil {
				out.PersonClaims = map[string][]string{}
			}
			out.PersonClaims[name] = vals
		}
	}
	at, ok, err := idtoken.NumericDate(m, "auth_time")
	if err != nil {
		return nil, &idpRefusal{reason: "the ID token's " + err.Error(), err: err}
	}
	if ok {
		out.AuthTime = at.UTC()
	}
	return out, nil
}

// decodeClaims reads the claims of an ID token or a userinfo answer
// through claims (their Claims method); a refusal says that what cannot be
// read.
func decodeClaims(claims func(any) error, what string) (map[string]any, error) {
	var payload json.RawMessage
	if err := claims(&payload); err != nil {
		return nil, &idpRefusal{reason: what + " cannot be read", err: err}
	}
	m, err := idtoken.Decode(payload)
	if err != nil {
		return nil, &idpRefusal{reason: what + " cannot be read", err: err}
	}
	return m, nil
}

// userinfo completes (or, after a refresh without ID token, provides) the
// claims from the userinfo endpoint. Its subject must match.
func (c *idpClient) userinfo(ctx context.Context, d *discovered, tok *oauth2.Token, base *idClaims) (*idClaims, error) {
	if d.provider.UserInfoEndpoint() == "" || tok.AccessToken == "" {
		if base != nil {
			return base, nil // no groups claim anywhere: no groups
		}
		return nil, &idpRefusal{reason: "the identity provider returned neither an ID token nor a userinfo endpoint to confirm the groups"}
	}
	ui, err := d.provider.UserInfo(gooidc.ClientContext(ctx, c.httpClient), oauth2.StaticTokenSource(tok))
	if err != nil {
		if ctx.Err() == nil && isNetErr(err) {
			return nil, c.unavailable("reading userinfo", err)
		}
		return nil, fmt.Errorf("%w: reading userinfo at %s failed: %s", ErrIdPUnavailable, c.issuer, idtoken.CauseText(err))
	}
	m, err := decodeClaims(ui.Claims, "the userinfo answer")
	if err != nil {
		return nil, err
	}
	got, err := c.readClaims(m)
	if err != nil {
		return nil, err
	}
	if base == nil {
		got.Issuer = c.issuer
		return got, nil
	}
	if got.Subject != base.Subject {
		return nil, &idpRefusal{reason: "the userinfo answer is for another subject than the ID token"}
	}
	base.Groups = got.Groups
	if base.Email == "" && got.Email != "" {
		base.Email, base.EmailVerified = got.Email, got.EmailVerified
	}
	base.OID = cmp.Or(base.OID, got.OID)
	for k, v := range got.PersonClaims {
		if _, ok := base.PersonClaims[k]; !ok {
			if base.PersonClaims == nil {
				base.PersonClaims = map[string][]string{}
			}
			base.PersonClaims[k] = v
		}
	}
	base.Name = cmp.Or(base.Name, got.Name)
	base.PreferredUsername = cmp.Or(base.PreferredUsername, got.PreferredUsername)
	return base, nil
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// boolClaim reads a boolean claim: JSON true or false, or the strings
// some providers send ("true", "false", "1", "0"); nil when absent or
// anything else.
func boolClaim(v any) *bool {
	switch v := v.(type) {
	case bool:
		return &v
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			return &b
		}
	}
	return nil
}
