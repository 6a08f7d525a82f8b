package devissuer

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/webpage"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// Paths of the sign-in endpoints, relative to the issuer URL's path, served
// by Handler once EnableLogin was called.
const (
	AuthorizePath = "/authorize"
	TokenPath     = "/token"
)

// DefaultClientID is the client id dev mode registers for signoff's own
// account-link flow at the dev issuer.
const DefaultClientID = "signoff-dev"

// Lifetimes of the sign-in flow.
const (
	// CodeTTL is how long an authorization code can be redeemed.
	CodeTTL = time.Minute
	// IDTokenTTL is the lifetime of the ID tokens (and the opaque access
	// tokens) the token endpoint issues.
	IDTokenTTL = 5 * time.Minute
	// SignInPageTTL is how long a sign-in page can be submitted.
	SignInPageTTL = 10 * time.Minute
)

// maxPending caps the sign-in pages and the codes held in memory at once,
// so a loop hitting the endpoints cannot grow them without bound.
const maxPending = 1000

// devAMR is the amr of every sign-in at the dev issuer: it stands for a
// password plus a one-time code, so actions whose step_up sets require_mfa
// can be tried in dev mode.
var devAMR = []string{"pwd", "otp"}

// loginCookie binds a sign-in page's CSRF token to one browser.
const loginCookie = "signoff_devidp"

// Person is someone the dev issuer's sign-in page offers to sign in as.
// Their ID token carries sub, name and preferred_username = Name, email =
// Email (when set, with email_verified true) and groups = Groups.
type Person struct {
	Name   string
	Email  string
	Groups []string
}

// LoginOptions configure the dev issuer's authorization-code flow (see
// EnableLogin).
type LoginOptions struct {
	// ClientID is the one client the issuer knows, a public client (no
	// secret: PKCE with S256 protects the code). Default DefaultClientID.
	ClientID string
	// RedirectURL is the client's redirect URI; an authorization request
	// must name exactly this URL. It must be an absolute http(s) URL on a
	// loopback host, without fragment.
	RedirectURL string
	// People are offered on the sign-in page; at least one, with unique,
	// non-empty names.
	People []Person
	// Clock is the time source of codes, sign-in pages and ID tokens;
	// default the wall clock.
	Clock clock.Clock
}

// login is the state of the authorization-code flow.
type login struct {
	clientID       string
	redirectURL    string
	redirectOrigin string
	people         []Person
	clock          clock.Clock
	secret         []byte // keys the sign-in page CSRF tokens
	authorizePath  string // the path of /authorize (and of the cookie)
	secure         bool

	mu    sync.Mutex
	pages map[string]*authRequest // sign-in pages shown, by page id
	codes map[string]*codeGrant   // codes issued, by code
}

// authRequest is a validated authorization request waiting for the person
// to pick who they sign in as.
type authRequest struct {
	state, nonce, challenge, acr string
	expires                      time.Time
}

// codeGrant is what an authorization code stands for.
type codeGrant struct {
	clientID, redirectURL, nonce, challenge, acr string
	person                                       Person
	authTime, expires                            time.Time
}

// EnableLogin turns the dev issuer into a minimal OpenID Provider for the
// authorization-code flow with PKCE, so a client such as signoff's
// account-link flow (linkflow.Linker) can sign people in at it. Handler then
// also serves:
//
//   - GET <issuer path>/authorize: checks the request (client_id and
//     redirect_uri must be the configured ones; response_type=code; scope
//     with openid; state, nonce and an S256 code_challenge are required)
//     and shows a page listing opts.People. Choosing one POSTs back to
//     /authorize (with a CSRF token bound to the page and to a browser
//     cookie), which redirects to redirect_uri with a single-use code (256
//     random bits, valid CodeTTL, bound to the client, the redirect URI,
//     the nonce, the code challenge and the person) and the state.
//     Refusals that concern the client or the redirect URI are shown as a
//     page; the others are sent to redirect_uri as error=…, as RFC 6749
//     §4.1.2.1 says. prompt=none is answered with login_required.
//   - POST <issuer path>/token: grant_type=authorization_code only. The
//     client is public: it names itself with client_id in the form or as
//     the user of HTTP Basic authentication with an empty password; a
//     client secret is refused. The code is used up by the first attempt
//     to redeem it; the redirect_uri and the code_verifier must match. The
//     answer is {access_token, token_type: Bearer, expires_in, id_token}.
//
// Every sign-in is fresh: auth_time is the moment the person was chosen,
// so prompt=login and any max_age are satisfied. amr is ["pwd", "otp"]
// (dev sign-ins count as multi-factor, so step-up rules that require MFA
// can be tried); acr is the first of the request's acr_values, when any.
// The ID token's aud is the client id, sub the person's name. No refresh
// tokens are issued (grant_types_supported: [authorization_code]): a
// client must sign the person in again to re-read their groups. There is
// no userinfo endpoint, and the access token is opaque and accepted
// nowhere. The discovery document advertises the two endpoints from now
// on. EnableLogin may be called once.
func (i *Issuer) EnableLogin(opts LoginOptions) error {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if strings.ContainsFunc(opts.ClientID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("devissuer: client id %q must not contain spaces or control characters", opts.ClientID)
	}
	ru, err := url.Parse(opts.RedirectURL)
	if err != nil {
		return fmt.Errorf("devissuer: redirect URL %q is not a URL: %w", opts.RedirectURL, err)
	}
	if (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" || ru.Fragment != "" || ru.User != nil {
		return fmt.Errorf("devissuer: redirect URL %q must be an absolute http(s) URL without fragment or user info", opts.RedirectURL)
	}
	if !hostlist.IsLoopback(ru.Hostname()) {
		return fmt.Errorf("devissuer: redirect URL %q is not on a loopback address; the dev issuer only signs people in to local clients", opts.RedirectURL)
	}
	if len(opts.People) == 0 {
		return errors.New("devissuer: no people to sign in as (dev.approvers is empty?)")
	}
	people := make([]Person, 0, len(opts.People))
	for _, p := range opts.People {
		if strings.TrimSpace(p.Name) == "" {
			return errors.New("devissuer: a person without a name")
		}
		if slices.ContainsFunc(people, func(q Person) bool { return q.Name == p.Name }) {
			return fmt.Errorf("devissuer: person %q is listed twice", p.Name)
		}
		p.Groups = slices.Clone(p.Groups)
		if p.Groups == nil {
			p.Groups = []string{}
		}
		people = append(people, p)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("devissuer: reading random bytes: %w", err)
	}
	l := &login{
		clientID:       opts.ClientID,
		redirectURL:    opts.RedirectURL,
		redirectOrigin: ru.Scheme + "://" + ru.Host,
		people:         people,
		clock:          opts.Clock,
		secret:         secret,
		authorizePath:  i.basePath + AuthorizePath,
		secure:         strings.HasPrefix(i.issuer, "https:"),
		pages:          map[string]*authRequest{},
		codes:          map[string]*codeGrant{},
	}
	metadata, err := i.discovery(true)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.login != nil {
		return errors.New("devissuer: login is already enabled")
	}
	i.login, i.metadata = l, metadata
	return nil
}

// loginState returns the login flow, or nil when EnableLogin was not
// called.
func (i *Issuer) loginState() *login {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.login
}

// OAuth 2.0 error codes (RFC 6749 §4.1.2.1, §5.2; OpenID Connect Core
// §3.1.2.6).
const (
	errInvalidRequest          = "invalid_request"
	errInvalidClient           = "invalid_client"
	errInvalidGrant            = "invalid_grant"
	errInvalidScope            = "invalid_scope"
	errUnsupportedGrantType    = "unsupported_grant_type"
	errUnsupportedResponseType = "unsupported_response_type"
	errAccessDenied            = "access_denied"
	errLoginRequired           = "login_required"
	errRequestNotSupported     = "request_not_supported"
	errRequestURINotSupported  = "request_uri_not_supported"
	errTemporarilyUnavailable  = "temporarily_unavailable"
)

// authorizeParams may each appear once in an authorization request.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "acr_values", "request", "request_uri"}

// authorize serves GET /authorize: it validates the request and shows the
// sign-in page.
func (i *Issuer) authorize(l *login, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// Without the right client and redirect URI nothing may be sent to the
	// redirect URI (RFC 6749 §4.1.2.1): show the problem instead.
	switch {
	case len(q["client_id"]) != 1 || q.Get("client_id") != l.clientID:
		i.errorPage(w, http.StatusBadRequest, "Unknown client",
			fmt.Sprintf("The request names client_id %q; the dev issuer only knows %q.", q.Get("client_id"), l.clientID))
		return
	case len(q["redirect_uri"]) != 1 || q.Get("redirect_uri") != l.redirectURL:
		i.errorPage(w, http.StatusBadRequest, "Wrong redirect URI",
			fmt.Sprintf("The request names redirect_uri %q; the dev issuer only sends people back to %q.", q.Get("redirect_uri"), l.redirectURL))
		return
	}
	state := q.Get("state")
	refuse := func(code, desc string) {
		v := url.Values{"error": {code}, "error_description": {desc}}
		if len(q["state"]) == 1 && state != "" {
			v.Set("state", state)
		}
		i.redirectBack(l, w, r, v)
	}
	for _, p := range authorizeParams {
		if len(q[p]) > 1 {
			refuse(errInvalidRequest, "parameter "+p+" is given more than once")
			return
		}
	}
	scopes := strings.Fields(q.Get("scope"))
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	maxAge := q.Get("max_age")
	switch {
	case q.Get("request") != "":
		refuse(errRequestNotSupported, "request objects are not supported")
		return
	case q.Get("request_uri") != "":
		refuse(errRequestURINotSupported, "request_uri is not supported")
		return
	case q.Get("response_type") != "code":
		refuse(errUnsupportedResponseType, "only response_type=code is supported")
		return
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		refuse(errInvalidRequest, "only response_mode=query is supported")
		return
	case !slices.Contains(scopes, "openid"):
		refuse(errInvalidScope, "scope must include openid")
		return
	case state == "":
		refuse(errInvalidRequest, "state is required")
		return
	case q.Get("nonce") == "":
		refuse(errInvalidRequest, "nonce is required")
		return
	case challenge == "":
		refuse(errInvalidRequest, "PKCE is required: send code_challenge with code_challenge_method=S256")
		return
	case method != "S256":
		refuse(errInvalidRequest, fmt.Sprintf("code_challenge_method %q is not supported; use S256", method))
		return
	case !validChallenge(challenge):
		refuse(errInvalidRequest, "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
		return
	case maxAge != "" && !validMaxAge(maxAge):
		refuse(errInvalidRequest, "max_age must be a non-negative number of seconds")
		return
	case slices.Contains(strings.Fields(q.Get("prompt")), "none"):
		// There is no session to reuse: every sign-in here is interactive.
		refuse(errLoginRequired, "the dev issuer keeps no session; sign in interactively")
		return
	}
	req := &authRequest{state: state, nonce: q.Get("nonce"), challenge: challenge}
	if acr := strings.Fields(q.Get("acr_values")); len(acr) > 0 {
		req.acr = acr[0]
	}
	pageID, err := idtoken.RandomToken()
	if err != nil {
		i.errorPage(w, http.StatusInternalServerError, "Internal error", err.Error())
		return
	}
	now := l.clock.Now()
	req.expires = now.Add(SignInPageTTL)
	if !l.put(func() bool {
		if len(l.pages) >= maxPending {
			return false
		}
		l.pages[pageID] = req
		return true
	}) {
		refuse(errTemporarilyUnavailable, "too many sign-ins are in progress; try again in a few minutes")
		return
	}
	cookie := ""
	if c, err := r.Cookie(loginCookie); err == nil && idtoken.ValidToken(c.Value) {
		cookie = c.Value
	} else {
		if cookie, err = idtoken.RandomToken(); err != nil {
			i.errorPage(w, http.StatusInternalServerError, "Internal error", err.Error())
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: loginCookie, Value: cookie, Path: l.authorizePath,
			HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteLaxMode,
		})
	}
	fresh := slices.Contains(strings.Fields(q.Get("prompt")), "login") || maxAge != ""
	i.renderSignIn(w, l, signInData{
		Issuer:   i.issuer,
		ClientID: l.clientID,
		Redirect: l.redirectOrigin,
		Action:   l.authorizePath,
		Page:     pageID,
		CSRF:     l.csrfToken(pageID, cookie),
		People:   l.people,
		Fresh:    fresh,
		ACR:      req.acr,
	})
}

// signIn serves POST /authorize: the person picked on the sign-in page.
func (i *Issuer) signIn(l *login, w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		i.errorPage(w, http.StatusBadRequest, "Unreadable form", "The sign-in form could not be read.")
		return
	}
	pageID := r.PostForm.Get("page")
	var cookie string
	if c, err := r.Cookie(loginCookie); err == nil {
		cookie = c.Value
	}
	if cookie == "" || !idtoken.ValidToken(pageID) || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(l.csrfToken(pageID, cookie))) {
		i.errorPage(w, http.StatusForbidden, "This sign-in form is not valid",
			"It did not come from the sign-in page shown to this browser, so it may be forged. Start the sign-in again from signoff.")
		return
	}
	var req *authRequest
	l.put(func() bool {
		req = l.pages[pageID]
		delete(l.pages, pageID) // one answer per page
		return true
	})
	now := l.clock.Now()
	if req == nil || !now.Before(req.expires) {
		i.errorPage(w, http.StatusBadRequest, "This sign-in page has expired",
			"It was already used, or it was shown too long ago. Start the sign-in again from signoff.")
		return
	}
	if r.PostForm.Get("cancel") != "" {
		i.redirectBack(l, w, r, url.Values{"error": {errAccessDenied}, "error_description": {"the sign-in was cancelled"}, "state": {req.state}})
		return
	}
	name := r.PostForm.Get("person")
	idx := slices.IndexFunc(l.people, func(p Person) bool { return p.Name == name })
	if idx < 0 {
		i.errorPage(w, http.StatusBadRequest, "Unknown person",
			fmt.Sprintf("%q is not one of the people the dev issuer signs in. Start the sign-in again from signoff.", name))
		return
	}
	code, err := idtoken.RandomToken()
	if err != nil {
		i.errorPage(w, http.StatusInternalServerError, "Internal error", err.Error())
		return
	}
	g := &codeGrant{
		clientID: l.clientID, redirectURL: l.redirectURL, nonce: req.nonce, challenge: req.challenge, acr: req.acr,
		person: l.people[idx], authTime: now, expires: now.Add(CodeTTL),
	}
	if !l.put(func() bool {
		if len(l.codes) >= maxPending {
			return false
		}
		l.codes[code] = g
		return true
	}) {
		i.redirectBack(l, w, r, url.Values{"error": {errTemporarilyUnavailable}, "error_description": {"too many codes are outstanding; try again in a minute"}, "state": {req.state}})
		return
	}
	i.redirectBack(l, w, r, url.Values{"code": {code}, "state": {req.state}})
}

// put runs fn under the lock after dropping expired pages and codes; it
// returns fn's result.
func (l *login) put(fn func() bool) bool {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, p := range l.pages {
		if !now.Before(p.expires) {
			delete(l.pages, id)
		}
	}
	for c, g := range l.codes {
		if !now.Before(g.expires) {
			delete(l.codes, c)
		}
	}
	return fn()
}

// redirectBack sends the browser to the redirect URI with params (and iss,
// RFC 9207).
func (i *Issuer) redirectBack(l *login, w http.ResponseWriter, r *http.Request, params url.Values) {
	u, err := url.Parse(l.redirectURL) // checked by EnableLogin
	if err != nil {
		i.errorPage(w, http.StatusInternalServerError, "Internal error", err.Error())
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	q.Set("iss", i.issuer)
	u.RawQuery = q.Encode()
	webpage.SetHeaders(w, "'none'")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (l *login) csrfToken(pageID, cookie string) string {
	m := hmac.New(sha256.New, l.secret)
	m.Write([]byte("signoff dev issuer sign-in\x00" + pageID + "\x00" + cookie))
	return hex.EncodeToString(m.Sum(nil))
}

// tokenParams may each appear once in a token request.
var tokenParams = []string{"grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret"}

// token serves POST /token: it redeems a code for an ID token.
func (i *Issuer) token(l *login, w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, errInvalidRequest, "the form could not be read")
		return
	}
	f := r.PostForm
	for _, p := range tokenParams {
		if len(f[p]) > 1 {
			tokenError(w, http.StatusBadRequest, errInvalidRequest, "parameter "+p+" is given more than once")
			return
		}
	}
	// Client authentication: a public client names itself.
	clientID := f.Get("client_id")
	if user, pass, ok := r.BasicAuth(); ok {
		user, uerr := url.QueryUnescape(user)
		pass, perr := url.QueryUnescape(pass)
		switch {
		case uerr != nil || perr != nil:
			tokenError(w, http.StatusUnauthorized, errInvalidClient, "the Authorization header is malformed")
			return
		case pass != "":
			tokenError(w, http.StatusUnauthorized, errInvalidClient, "the client is public: send no client secret")
			return
		case clientID != "" && clientID != user:
			tokenError(w, http.StatusBadRequest, errInvalidRequest, "client_id differs from the Authorization header")
			return
		}
		clientID = user
	}
	switch {
	case f.Get("client_secret") != "":
		tokenError(w, http.StatusUnauthorized, errInvalidClient, "the client is public: send no client secret")
		return
	case clientID == "":
		tokenError(w, http.StatusUnauthorized, errInvalidClient, "no client_id given")
		return
	case clientID != l.clientID:
		tokenError(w, http.StatusUnauthorized, errInvalidClient, "unknown client")
		return
	}
	switch gt := f.Get("grant_type"); gt {
	case "authorization_code":
	case "":
		tokenError(w, http.StatusBadRequest, errInvalidRequest, "grant_type is required")
		return
	default:
		tokenError(w, http.StatusBadRequest, errUnsupportedGrantType, "only grant_type=authorization_code is supported")
		return
	}
	code, verifier := f.Get("code"), f.Get("code_verifier")
	switch {
	case code == "":
		tokenError(w, http.StatusBadRequest, errInvalidRequest, "code is required")
		return
	case verifier == "":
		tokenError(w, http.StatusBadRequest, errInvalidRequest, "code_verifier is required (PKCE)")
		return
	case !validVerifier(verifier):
		tokenError(w, http.StatusBadRequest, errInvalidRequest, "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
		return
	}
	// From here the code is used up, whatever the outcome.
	var g *codeGrant
	l.put(func() bool {
		g = l.codes[code]
		delete(l.codes, code)
		return true
	})
	now := l.clock.Now()
	sum := sha256.Sum256([]byte(verifier))
	switch {
	case g == nil:
		tokenError(w, http.StatusBadRequest, errInvalidGrant, "the code is unknown, already used or expired")
		return
	case !now.Before(g.expires):
		tokenError(w, http.StatusBadRequest, errInvalidGrant, "the code has expired")
		return
	case g.clientID != clientID:
		tokenError(w, http.StatusBadRequest, errInvalidGrant, "the code was issued to another client")
		return
	case f.Get("redirect_uri") != g.redirectURL:
		tokenError(w, http.StatusBadRequest, errInvalidGrant, "redirect_uri does not match the authorization request")
		return
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1:
		tokenError(w, http.StatusBadRequest, errInvalidGrant, "code_verifier does not match the code_challenge")
		return
	}
	claims := map[string]any{
		"iss":                i.issuer,
		"sub":                g.person.Name,
		"aud":                g.clientID,
		"iat":                now.Unix(),
		"exp":                now.Add(IDTokenTTL).Unix(),
		"auth_time":          g.authTime.Unix(),
		"nonce":              g.nonce,
		"amr":                devAMR,
		"name":               g.person.Name,
		"preferred_username": g.person.Name,
		"groups":             g.person.Groups,
	}
	if g.person.Email != "" {
		claims["email"] = g.person.Email
		claims["email_verified"] = true
	}
	if g.acr != "" {
		claims["acr"] = g.acr
	}
	idToken, err := i.sign(claims)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "the ID token could not be signed")
		return
	}
	access, err := idtoken.RandomToken()
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "no random bytes")
		return
	}
	writeTokenJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int(IDTokenTTL / time.Second),
		"id_token":     idToken,
	})
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="signoff dev issuer"`)
	}
	writeTokenJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeTokenJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// validChallenge reports whether s can be an S256 code challenge: a
// SHA-256 hash, base64url without padding, of the form of a random token.
func validChallenge(s string) bool { return idtoken.ValidToken(s) }

// validVerifier checks a PKCE code verifier's form (RFC 7636 §4.1).
func validVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

func validMaxAge(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n >= 0
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// signInData fills the sign-in page.
type signInData struct {
	Issuer   string
	ClientID string
	Redirect string
	Action   string
	Page     string
	CSRF     string
	People   []Person
	Fresh    bool
	ACR      string
}

func (i *Issuer) renderSignIn(w http.ResponseWriter, l *login, d signInData) {
	var buf bytes.Buffer
	if err := signInTemplate.Execute(&buf, d); err != nil {
		i.errorPage(w, http.StatusInternalServerError, "Internal error", "The sign-in page could not be rendered.")
		return
	}
	// The form posts here, and its answer redirects to the client.
	webpage.SetHeaders(w, "'self' "+l.redirectOrigin)
	webpage.WriteHTML(w, http.StatusOK, buf.Bytes())
}

// errorPage shows a refusal that must not be sent to the redirect URI.
func (i *Issuer) errorPage(w http.ResponseWriter, status int, title, detail string) {
	var buf bytes.Buffer
	if err := errorTemplate.Execute(&buf, map[string]string{"Title": title, "Detail": detail}); err != nil {
		buf.Reset()
		buf.WriteString("dev issuer: " + http.StatusText(status))
	}
	webpage.SetHeaders(w, "'none'")
	webpage.WriteHTML(w, status, buf.Bytes())
}
