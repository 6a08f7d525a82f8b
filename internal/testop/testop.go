// Package testop is a real OpenID Provider for signoff's tests only,
// listening on loopback. It is built on github.com/zitadel/oidc/v3/pkg/op
// with an in-memory op.Storage: users with passwords, groups and an
// optional one-time code (MFA), a login page the tests drive like a
// browser, SSO sessions that honour prompt=login and max_age,
// authorization code + PKCE, refresh tokens with rotation, and knobs to
// disable a user, change groups, or make the provider misbehave.
//
// It is for tests only; no production code may import it.
package testop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/signoff-dev/signoff/clock"
)

const (
	// ClientID and ClientSecret are the credentials of the signoff client
	// registered at the provider.
	ClientID     = "signoff-test"
	ClientSecret = "client-s3cr3t-for-tests"
	// ACRPassword and ACRMFA are the ACR values the provider reports (when
	// the client asked for acr_values) after a password-only login and
	// after a login with the one-time code.
	ACRPassword = "urn:signoff:test:pwd"
	ACRMFA      = "urn:signoff:test:mfa"
)

// User is an account at the test provider. ID (the subject) defaults to
// "sub-" + Username.
type User struct {
	ID, Username, Password, Email, Name string
	Groups                              []string
	// OTP, when set, is a one-time code the login form accepts as a second
	// factor (amr ["pwd","otp","mfa"]).
	OTP      string
	Disabled bool
	// EmailVerified, when non-nil, is the email_verified claim carried
	// (with the email scope) in the ID token and userinfo. When nil the
	// provider claims email_verified: true whenever the email scope is
	// granted (even if Email is empty).
	EmailVerified *bool
	// NoEmailVerified leaves the email_verified claim out altogether, as
	// Microsoft Entra ID does (EmailVerified is then ignored).
	NoEmailVerified bool
	// Extra claims put into the ID token and userinfo, e.g. "oid" or a
	// custom "github_login". They never override a standard claim the
	// provider sets itself.
	Extra map[string]any
}

// OP is the running provider.
type OP struct {
	t        testing.TB
	srv      *httptest.Server
	provider *op.Provider
	st       *opStorage
	Issuer   string
}

// New starts a provider on loopback whose auth_time follows clk and
// registers the signoff client (ClientID, ClientSecret) with redirectURL;
// redirectURL may be empty and further redirect URIs may be added with
// AddRedirectURI. The provider stops when the test ends.
func New(t testing.TB, clk clock.Clock, redirectURL string) *OP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var redirectURIs []string
	if redirectURL != "" {
		redirectURIs = []string{redirectURL}
	}
	st := &opStorage{
		clock:         clk,
		key:           key,
		keyID:         "test-key-1",
		users:         map[string]*User{},
		authReqs:      map[string]*opAuthRequest{},
		codes:         map[string]string{},
		accessTokens:  map[string]*opAccessToken{},
		refreshTokens: map[string]*opRefreshToken{},
		sessions:      map[string]*opSession{},
		clients: map[string]*opClient{ClientID: {
			id: ClientID, secret: ClientSecret, redirectURIs: redirectURIs,
			idTokenLifetime: 1000 * time.Hour,
		}},
	}
	o := &OP{t: t, st: st}
	var handler http.Handler = http.NotFoundHandler()
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(o.srv.Close)
	o.Issuer = o.srv.URL
	cfg := &op.Config{
		CryptoKey:             sha256.Sum256([]byte("test op crypto key")),
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
	}
	o.provider, err = op.NewProvider(cfg, st, op.StaticIssuer(o.Issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatalf("start test OpenID Provider: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", o.loginPage)
	mux.HandleFunc("POST /login", o.loginSubmit)
	mux.Handle("/", o.provider)
	handler = o.rewriteTokens(mux)
	return o
}

// AddUser registers u (replacing any user of the same Username).
func (o *OP) AddUser(u User) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	if u.ID == "" {
		u.ID = "sub-" + u.Username
	}
	u.Groups = slices.Clone(u.Groups)
	u.Extra = maps.Clone(u.Extra)
	o.st.users[u.Username] = &u
}

// AddRedirectURI registers one more redirect URI for the signoff client,
// e.g. once a test knows the address signoff listens on. It is safe to
// call while the provider serves requests.
func (o *OP) AddRedirectURI(u string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	// Copy on write: a client handed out earlier is never mutated.
	c := *o.st.clients[ClientID]
	c.redirectURIs = append(slices.Clone(c.redirectURIs), u)
	o.st.clients[ClientID] = &c
}

// AddPublicClient registers a public client: a native application such as
// a command line, with no secret, so PKCE is what protects its codes. As
// RFC 8252 §7.3 asks of a provider, it may redirect to
// http://127.0.0.1:PORT/callback at any port. Its ID tokens last an hour.
func (o *OP) AddPublicClient(id string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.clients[id] = &opClient{
		id: id, public: true, redirectURIs: []string{"http://127.0.0.1/callback"},
		idTokenLifetime: time.Hour,
	}
}

// SetGroups replaces a user's groups.
func (o *OP) SetGroups(username string, groups ...string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.users[username].Groups = groups
}

// Disable disables a user: logins and refreshes are refused.
func (o *OP) Disable(username string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.users[username].Disabled = true
}

// ConsentForOfflineAccess makes the provider follow OpenID Connect Core
// §11 strictly: offline_access is dropped (no refresh token) unless the
// authorization request carries prompt=consent.
func (o *OP) ConsentForOfflineAccess(v bool) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.consentForOffline = v
}

// NoRefreshTokens makes the provider ignore offline_access always, as one
// whose client may not use refresh tokens does.
func (o *OP) NoRefreshTokens(v bool) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.noRefreshTokens = v
}

// IgnorePromptLogin makes the provider reuse an SSO session even when the
// client asked for prompt=login or a max_age (a misbehaving provider).
func (o *OP) IgnorePromptLogin(v bool) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.ignorePromptLogin = v
}

// RewriteIDToken makes the token endpoint re-sign every ID token after f
// changed its claims (nil: off).
func (o *OP) RewriteIDToken(f func(claims map[string]any)) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.rewrite = f
}

// RewriteRawIDToken makes the token endpoint replace every ID token by
// f(token) (nil: off).
func (o *OP) RewriteRawIDToken(f func(raw string) string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.rewriteRaw = f
}

// IssuedTokens returns every authorization code and every access, refresh
// and ID token the provider handed out.
func (o *OP) IssuedTokens() []string {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	return slices.Clone(o.st.issued)
}

// RefreshTokens returns the refresh tokens handed out, oldest first.
func (o *OP) RefreshTokens() []string {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	return slices.Clone(o.st.issuedRefresh)
}

// LiveRefreshTokens counts refresh tokens the provider still honours.
func (o *OP) LiveRefreshTokens() int {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	return len(o.st.refreshTokens)
}

// Refreshes counts refresh grants answered.
func (o *OP) Refreshes() int {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	return o.st.refreshes
}

// ---- login UI ----

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body><h1>Sign in to the test IdP</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input id="username" name="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<label>One-time code <input id="otp" name="otp"></label>
<button id="signin" type="submit" name="action" value="login">Sign in</button>
<button id="cancel" type="submit" name="action" value="deny">Cancel</button>
</form></body></html>`))

const sessionCookie = "testop_session"

// loginPage shows the form, or completes the request from an SSO session
// when the client did not ask for a fresh login.
func (o *OP) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	s := o.st
	s.mu.Lock()
	req, ok := s.authReqs[id]
	var sess *opSession
	if c, err := r.Cookie(sessionCookie); err == nil {
		sess = s.sessions[c.Value]
	}
	reuse := false
	if ok && sess != nil {
		u := s.userByID(sess.userID)
		// max_age=0 (which prompt=login implies) always asks for a login.
		fresh := req.maxAge == nil || (*req.maxAge > 0 && s.clock.Now().Sub(sess.authTime) <= *req.maxAge)
		reuse = u != nil && !u.Disabled && (fresh || s.ignorePromptLogin)
	}
	if reuse {
		req.complete(sess.userID, sess.authTime, sess.amr)
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown auth request", http.StatusBadRequest)
		return
	}
	if reuse {
		http.Redirect(w, r, op.AuthCallbackURL(o.provider)(r.Context(), id), http.StatusFound)
		return
	}
	o.renderLogin(w, id, "")
}

func (o *OP) renderLogin(w http.ResponseWriter, id, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginTemplate.Execute(w, map[string]string{"ID": id, "Error": msg})
}

func (o *OP) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.FormValue("id")
	s := o.st
	s.mu.Lock()
	req, ok := s.authReqs[id]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown auth request", http.StatusBadRequest)
		return
	}
	if r.FormValue("action") == "deny" {
		op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("the user cancelled the sign-in"), o.provider)
		return
	}
	s.mu.Lock()
	u := s.users[r.FormValue("username")]
	if u == nil || u.Password != r.FormValue("password") {
		s.mu.Unlock()
		o.renderLogin(w, id, "wrong username or password")
		return
	}
	if u.Disabled {
		s.mu.Unlock()
		o.renderLogin(w, id, "this account is disabled")
		return
	}
	amr := []string{"pwd"}
	if u.OTP != "" && r.FormValue("otp") == u.OTP {
		amr = []string{"pwd", "otp", "mfa"}
	}
	now := s.clock.Now()
	req.complete(u.ID, now, amr)
	sid := randomHex()
	s.sessions[sid] = &opSession{userID: u.ID, authTime: now, amr: amr}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true})
	http.Redirect(w, r, op.AuthCallbackURL(o.provider)(r.Context(), id), http.StatusFound)
}

// rewriteTokens records what the token endpoint hands out and applies
// the RewriteIDToken knob.
func (o *OP) rewriteTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/oauth/token") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var resp map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(body, &resp) == nil {
			o.st.mu.Lock()
			rewrite, rewriteRaw := o.st.rewrite, o.st.rewriteRaw
			o.st.mu.Unlock()
			if raw, ok := resp["id_token"].(string); ok && (rewrite != nil || rewriteRaw != nil) {
				if rewrite != nil {
					raw = o.resign(raw, rewrite)
				}
				if rewriteRaw != nil {
					raw = rewriteRaw(raw)
				}
				resp["id_token"] = raw
				body, _ = json.Marshal(resp)
			}
			o.st.mu.Lock()
			for _, k := range []string{"access_token", "refresh_token", "id_token"} {
				if v, ok := resp[k].(string); ok && v != "" {
					o.st.issued = append(o.st.issued, v)
				}
			}
			if v, ok := resp["refresh_token"].(string); ok && v != "" {
				o.st.issuedRefresh = append(o.st.issuedRefresh, v)
			}
			o.st.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// resign decodes a JWT's claims, lets f change them and signs them again
// with the provider's key.
func (o *OP) resign(raw string, f func(map[string]any)) string {
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		o.t.Errorf("decode ID token: %v", err)
		return raw
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		o.t.Errorf("decode ID token: %v", err)
		return raw
	}
	f(claims)
	return o.sign(claims)
}

// sign signs claims with the provider's key (as the provider would).
func (o *OP) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: o.st.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", o.st.keyID))
	if err != nil {
		o.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		o.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		o.t.Fatal(err)
	}
	return out
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- op.Storage ----

type opSession struct {
	userID   string
	authTime time.Time
	amr      []string
}

type opStorage struct {
	mu                sync.Mutex
	clock             clock.Clock
	key               *ecdsa.PrivateKey
	keyID             string
	clients           map[string]*opClient
	users             map[string]*User // by username
	authReqs          map[string]*opAuthRequest
	codes             map[string]string // code → auth request id
	accessTokens      map[string]*opAccessToken
	refreshTokens     map[string]*opRefreshToken
	sessions          map[string]*opSession
	ignorePromptLogin bool
	consentForOffline bool
	noRefreshTokens   bool
	rewrite           func(map[string]any)
	rewriteRaw        func(string) string
	issued            []string
	issuedRefresh     []string
	refreshes         int
}

var _ op.Storage = (*opStorage)(nil)

func (s *opStorage) userByID(id string) *User {
	for _, u := range s.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

type opAuthRequest struct {
	id            string
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	maxAge        *time.Duration
	acrValues     []string

	userID   string
	done     bool
	authTime time.Time
	amr      []string
}

func (a *opAuthRequest) complete(userID string, authTime time.Time, amr []string) {
	a.userID, a.done, a.authTime, a.amr = userID, true, authTime, amr
}

func (a *opAuthRequest) GetID() string { return a.id }
func (a *opAuthRequest) GetACR() string {
	if len(a.acrValues) == 0 {
		return ""
	}
	if slices.Contains(a.amr, "mfa") {
		return ACRMFA
	}
	return ACRPassword
}
func (a *opAuthRequest) GetAMR() []string                      { return a.amr }
func (a *opAuthRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *opAuthRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *opAuthRequest) GetClientID() string                   { return a.clientID }
func (a *opAuthRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *opAuthRequest) GetNonce() string                      { return a.nonce }
func (a *opAuthRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *opAuthRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *opAuthRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *opAuthRequest) GetScopes() []string                   { return a.scopes }
func (a *opAuthRequest) GetState() string                      { return a.state }
func (a *opAuthRequest) GetSubject() string                    { return a.userID }
func (a *opAuthRequest) Done() bool                            { return a.done }

type opAccessToken struct {
	id, clientID, subject string
	scopes                []string
}

type opRefreshToken struct {
	token, clientID, userID string
	scopes, amr, audience   []string
	authTime                time.Time
}

// opRefreshRequest is a refresh grant in progress.
type opRefreshRequest struct{ rt opRefreshToken }

func (r *opRefreshRequest) GetAMR() []string                 { return r.rt.amr }
func (r *opRefreshRequest) GetAudience() []string            { return r.rt.audience }
func (r *opRefreshRequest) GetAuthTime() time.Time           { return r.rt.authTime }
func (r *opRefreshRequest) GetClientID() string              { return r.rt.clientID }
func (r *opRefreshRequest) GetScopes() []string              { return r.rt.scopes }
func (r *opRefreshRequest) GetSubject() string               { return r.rt.userID }
func (r *opRefreshRequest) SetCurrentScopes(scopes []string) { r.rt.scopes = scopes }

func (s *opStorage) CreateAuthRequest(_ context.Context, ar *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(ar.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	if s.noRefreshTokens || (s.consentForOffline && !slices.Contains(ar.Prompt, oidc.PromptConsent)) {
		// OpenID Connect Core 1.0 §11: without prompt=consent the
		// provider ignores offline_access (and issues no refresh token).
		ar.Scopes = slices.DeleteFunc(slices.Clone(ar.Scopes), func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	req := &opAuthRequest{
		id: randomHex(), clientID: ar.ClientID, redirectURI: ar.RedirectURI, state: ar.State, nonce: ar.Nonce,
		scopes: ar.Scopes, responseType: ar.ResponseType, responseMode: ar.ResponseMode, acrValues: ar.ACRValues,
	}
	if ar.CodeChallenge != "" {
		req.codeChallenge = &oidc.CodeChallenge{Challenge: ar.CodeChallenge, Method: ar.CodeChallengeMethod}
	}
	if ar.MaxAge != nil {
		d := time.Duration(*ar.MaxAge) * time.Second
		req.maxAge = &d
	}
	s.authReqs[req.id] = req
	return req, nil
}

func (s *opStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.authReqs[id]
	if !ok {
		return nil, errors.New("auth request not found")
	}
	return req, nil
}

func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or used")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *opStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	s.issued = append(s.issued, code)
	return nil
}

func (s *opStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authReqs, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *opStorage) newAccessToken(clientID, subject string, scopes []string) *opAccessToken {
	t := &opAccessToken{id: randomHex(), clientID: clientID, subject: subject, scopes: scopes}
	s.accessTokens[t.id] = t
	return t
}

func (s *opStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID := ""
	if ar, ok := req.(*opAuthRequest); ok {
		clientID = ar.clientID
	}
	t := s.newAccessToken(clientID, req.GetSubject(), req.GetScopes())
	return t.id, time.Now().Add(time.Hour), nil
}

func (s *opStorage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rt opRefreshToken
	switch r := req.(type) {
	case *opAuthRequest:
		rt = opRefreshToken{clientID: r.clientID, userID: r.userID, scopes: r.scopes, amr: r.amr, audience: r.GetAudience(), authTime: r.authTime}
	case *opRefreshRequest:
		old, ok := s.refreshTokens[current]
		if !ok {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
		delete(s.refreshTokens, current) // rotation: the old token is spent
		rt = *old
		rt.scopes = r.rt.scopes
		s.refreshes++
	default:
		return "", "", time.Time{}, fmt.Errorf("unsupported token request %T", req)
	}
	rt.token = "rt-" + randomHex()
	s.refreshTokens[rt.token] = &rt
	at := s.newAccessToken(rt.clientID, rt.userID, rt.scopes)
	return at.id, rt.token, time.Now().Add(time.Hour), nil
}

func (s *opStorage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return nil, errors.New("unknown refresh token")
	}
	if u := s.userByID(rt.userID); u == nil || u.Disabled {
		return nil, errors.New("user disabled")
	}
	return &opRefreshRequest{rt: *rt}, nil
}

func (s *opStorage) TerminateSession(context.Context, string, string) error { return nil }

func (s *opStorage) RevokeToken(_ context.Context, token, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refreshTokens, token)
	delete(s.accessTokens, token)
	return nil
}

func (s *opStorage) GetRefreshTokenInfo(_ context.Context, _, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.userID, rt.token, nil
}

type opSigningKey struct {
	id  string
	key *ecdsa.PrivateKey
}

func (k opSigningKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k opSigningKey) Key() any                                    { return k.key }
func (k opSigningKey) ID() string                                  { return k.id }

type opPublicKey struct{ opSigningKey }

func (k opPublicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k opPublicKey) Use() string                        { return "sig" }
func (k opPublicKey) Key() any                           { return &k.key.PublicKey }

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return opSigningKey{id: s.keyID, key: s.key}, nil
}

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{opPublicKey{opSigningKey{id: s.keyID, key: s.key}}}, nil
}

func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret != secret {
		return errors.New("invalid client")
	}
	return nil
}

// setUserinfo fills the claims of the user's current account state, so a
// refresh sees changed groups.
func (s *opStorage) setUserinfo(info *oidc.UserInfo, userID string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByID(userID)
	if u == nil || u.Disabled {
		return errors.New("user not found or disabled")
	}
	// Extra claims first, so the provider's own claims win.
	for k, v := range u.Extra {
		info.AppendClaims(k, v)
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeOpenID:
			info.Subject = u.ID
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, true
			if u.NoEmailVerified {
				info.EmailVerified = false // omitted: the field is omitempty
			} else if u.EmailVerified != nil {
				info.EmailVerified = oidc.Bool(*u.EmailVerified)
				// The registered field is omitempty: carry false as a claim.
				info.AppendClaims("email_verified", *u.EmailVerified)
			}
		case oidc.ScopeProfile:
			info.Name, info.PreferredUsername = u.Name, u.Username
		case "groups":
			info.AppendClaims("groups", slices.Clone(u.Groups))
		}
	}
	return nil
}

func (s *opStorage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, userID, _ string, scopes []string) error {
	return s.setUserinfo(info, userID, scopes)
}

func (s *opStorage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok {
		return errors.New("token invalid")
	}
	return s.setUserinfo(info, t.subject, t.scopes)
}

func (s *opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection not supported")
}

func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("not supported")
}

func (s *opStorage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *opStorage) Health(context.Context) error { return nil }

type opClient struct {
	id, secret      string
	redirectURIs    []string
	idTokenLifetime time.Duration
	// public: a native application without a secret (AddPublicClient).
	public bool
}

func (c *opClient) GetID() string                       { return c.id }
func (c *opClient) RedirectURIs() []string              { return c.redirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *opClient) ApplicationType() op.ApplicationType { return c.appType() }
func (c *opClient) AuthMethod() oidc.AuthMethod         { return c.authMethod() }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *opClient) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *opClient) IDTokenLifetime() time.Duration       { return c.idTokenLifetime }
func (c *opClient) DevMode() bool                        { return false }
func (c *opClient) IsScopeAllowed(string) bool           { return true }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// appType and authMethod: a public client is a native application that
// authenticates with nothing but PKCE.
func (c *opClient) appType() op.ApplicationType {
	if c.public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *opClient) authMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
