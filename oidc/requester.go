package oidc

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/signoff-dev/signoff/internal/jwks"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// Defaults and limits for VerifierOptions and TrustedIssuer.
const (
	// DefaultMaxSkew is the clock skew tolerated on exp, nbf and iat.
	DefaultMaxSkew = 60 * time.Second
	// MaxSkewLimit is the largest MaxSkew NewRequesterVerifier accepts.
	MaxSkewLimit = 2 * time.Minute
	// DefaultDiscoveryRetry is how long a failed discovery (or a failed
	// first key set download) is remembered before the issuer is tried
	// again.
	DefaultDiscoveryRetry = 10 * time.Second
	// DefaultKeyRefreshInterval is the minimum time between two key set
	// downloads from one issuer triggered by tokens naming unknown kids.
	DefaultKeyRefreshInterval = time.Minute
	// DefaultKeyMaxAge is how long downloaded keys are used before they are
	// fetched again, so keys an issuer withdraws stop being trusted.
	DefaultKeyMaxAge = time.Hour
	// DefaultPersonClaim is the claim naming the person behind a request
	// when TrustedIssuer.PersonClaim is empty.
	DefaultPersonClaim = "sub"
)

// TrustedIssuer is one OpenID issuer whose tokens CI may present (a
// requesters entry of the config). Several entries may share an Issuer as
// long as their Audiences differ; a token then goes to the entry its aud
// names.
type TrustedIssuer struct {
	// Name is the short name policy rules use ("github", "gitlab", "dev").
	Name string
	// Issuer is the issuer URL exactly as tokens carry it in iss, e.g.
	// "https://token.actions.githubusercontent.com" or "https://gitlab.com".
	// Discovery reads Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Audience must be one of the token's aud values.
	Audience string
	// PersonClaim names the claim identifying the person behind a request
	// (GitHub Actions: actor; GitLab CI: user_login); DefaultPersonClaim
	// when empty.
	PersonClaim string
	// NameClaim, EmailClaim and GroupsClaim optionally name the claims
	// holding the person's display name, email and groups.
	NameClaim   string
	EmailClaim  string
	GroupsClaim string
	// Login marks the entry for the ID tokens people get from the company
	// IdP with `signoff login` (Audience is idp.cli_client_id). Tokens
	// verified against it carry RequesterToken.Login: they name a person,
	// not a CI job, and the API takes them on admin and auditor endpoints
	// only.
	Login bool
	// HandleClaims name the claims that hold the person's names in the
	// requesters' identity systems (idp.person_claims, e.g. a GitHub
	// login kept in a custom attribute), read into RequesterToken.Handles:
	// a string, or a list of strings. For Login entries.
	HandleClaims []string
}

// VerifierOptions tunes a RequesterVerifier. The zero value is usable.
type VerifierOptions struct {
	// HTTPClient is used for discovery and key set downloads. Default: a
	// client with a 15-second timeout.
	HTTPClient *http.Client
	// Now is the clock for token times and for pacing network retries.
	// Default: time.Now.
	Now func() time.Time
	// MaxSkew is the clock skew tolerated between signoff and the issuer:
	// a token is accepted up to MaxSkew after its exp, and its nbf and iat
	// may be up to MaxSkew ahead. Zero means DefaultMaxSkew; it may not be
	// negative nor exceed MaxSkewLimit.
	MaxSkew time.Duration
	// DiscoveryRetry is how soon an issuer whose discovery failed is tried
	// again (meanwhile its tokens are refused at once). Zero means
	// DefaultDiscoveryRetry.
	DiscoveryRetry time.Duration
	// KeyRefreshInterval is the minimum time between two key set downloads
	// from one issuer when tokens name unknown kids. Zero means
	// DefaultKeyRefreshInterval.
	KeyRefreshInterval time.Duration
	// KeyMaxAge is how long a downloaded key set is used before the next
	// verification fetches it again. Zero means DefaultKeyMaxAge.
	KeyMaxAge time.Duration
	// TokenCacheSize is how many accepted tokens are remembered (by their
	// SHA-256, never the token) so that presenting one again skips the
	// signature check until its exp, or until the keys that verified it
	// are due to be fetched again, whichever is first. Zero means
	// DefaultTokenCacheSize; negative turns the cache off.
	TokenCacheSize int
	// Logger receives discovery and key set events (never tokens). Default:
	// discard.
	Logger *slog.Logger
}

// RequesterToken is a verified CI token.
type RequesterToken struct {
	// IssuerName is the TrustedIssuer.Name the token was verified against.
	IssuerName string
	// Issuer is the token's iss.
	Issuer string
	// Subject is the token's sub (GitHub: "repo:acme/api:ref:refs/heads/main";
	// GitLab: "project_path:acme/api:ref_type:branch:ref:main").
	Subject string
	// Person is the value of the issuer's PersonClaim: who is behind the
	// request, for the no-self-approval rule. Never empty.
	Person string
	// Name, Email and Groups come from NameClaim, EmailClaim and
	// GroupsClaim when configured and present.
	Name   string
	Email  string
	Groups []string
	// GroupsClaim names the claim Groups was read from: the entry's
	// GroupsClaim, empty when it names none (then Groups is always empty).
	// Refusals of admin and auditor endpoints name it.
	GroupsClaim string
	// Claims holds every top-level string claim, plus numbers (as the
	// issuer wrote them) and booleans ("true", "false"). Policy claim globs
	// match these (repository, ref, environment, project_path, …).
	Claims map[string]string
	// Expiry is the token's exp.
	Expiry time.Time
	// Login is set when the token is an IdP ID token from `signoff login`
	// (verified against a TrustedIssuer with Login set): good for admin
	// and auditor endpoints, never for creating or cancelling a request as
	// its requester.
	Login bool
	// Handles are the values of the entry's HandleClaims (lists flattened,
	// trimmed): the person's names in the requesters' identity systems,
	// which the no-self-review rule compares with a requester's person.
	Handles []string
}

// RequesterVerifier verifies CI bearer tokens from the trusted issuers. It
// is safe for concurrent use.
//
// A token is accepted only if: it is a compact JWS with one signature by
// RS256, ES256, PS256 or EdDSA; its iss is exactly a trusted Issuer; the
// signature verifies with a key that issuer publishes (found by OIDC
// discovery, then its jwks_uri); aud contains the configured Audience; exp
// is present and not more than MaxSkew past; nbf and iat, when present, are
// not more than MaxSkew ahead; and sub and the configured person claim are
// non-empty. Anything else is refused: a refusal is a *TokenError.
//
// Verify does NOT check which actions the token may request (that is
// policy's job) nor replay: a token may be presented many times until it
// expires. An accepted token is remembered (see TokenCacheSize), so
// presenting it again repeats only the checks that depend on the time.
type RequesterVerifier struct {
	issuers  []TrustedIssuer
	byIssuer map[string][]int // issuer URL → indexes into issuers
	remotes  map[string]*remoteIssuer
	opts     VerifierOptions
	cache    *tokenCache // nil when turned off
}

// NewRequesterVerifier checks the issuer list and returns a verifier. It
// does no network I/O: each issuer is discovered on the first token that
// names it, so an issuer that is down at start-up only refuses its own
// tokens until it answers. Use Discover to contact the issuers early.
func NewRequesterVerifier(issuers []TrustedIssuer, opts VerifierOptions) (*RequesterVerifier, error) {
	if len(issuers) == 0 {
		return nil, errors.New("oidc: no requester issuers configured: add a requesters entry (name, issuer, audience)")
	}
	if err := checkMaxSkew(opts.MaxSkew); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if opts.DiscoveryRetry < 0 || opts.KeyRefreshInterval < 0 || opts.KeyMaxAge < 0 {
		return nil, errors.New("oidc: DiscoveryRetry, KeyRefreshInterval and KeyMaxAge must not be negative")
	}
	opts.HTTPClient = cmp.Or(opts.HTTPClient, &http.Client{Timeout: idtoken.FetchTimeout})
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.MaxSkew = orDefault(opts.MaxSkew, DefaultMaxSkew)
	opts.DiscoveryRetry = orDefault(opts.DiscoveryRetry, DefaultDiscoveryRetry)
	opts.KeyRefreshInterval = orDefault(opts.KeyRefreshInterval, DefaultKeyRefreshInterval)
	opts.KeyMaxAge = orDefault(opts.KeyMaxAge, DefaultKeyMaxAge)
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))

	v := &RequesterVerifier{
		byIssuer: map[string][]int{},
		remotes:  map[string]*remoteIssuer{},
		opts:     opts,
		cache:    newTokenCache(orDefaultInt(opts.TokenCacheSize, DefaultTokenCacheSize)),
	}
	names := map[string]bool{}
	for i, ti := range issuers {
		if ti.Name == "" {
			return nil, fmt.Errorf("oidc: requester issuer %d has no name", i)
		}
		if names[ti.Name] {
			return nil, fmt.Errorf("oidc: requester issuer name %q is used twice", ti.Name)
		}
		names[ti.Name] = true
		if err := idtoken.CheckIssuerURL(ti.Issuer); err != nil {
			return nil, fmt.Errorf("oidc: requester issuer %q: %w", ti.Name, err)
		}
		if ti.Audience == "" {
			return nil, fmt.Errorf("oidc: requester issuer %q has no audience; tokens minted for other services would be accepted", ti.Name)
		}
		for _, j := range v.byIssuer[ti.Issuer] {
			if v.issuers[j].Audience == ti.Audience {
				return nil, fmt.Errorf("oidc: requester issuers %q and %q have the same issuer and audience; a token could not tell which one it belongs to", v.issuers[j].Name, ti.Name)
			}
		}
		if ti.PersonClaim == "" {
			ti.PersonClaim = DefaultPersonClaim
		}
		v.issuers = append(v.issuers, ti)
		v.byIssuer[ti.Issuer] = append(v.byIssuer[ti.Issuer], i)
		if v.remotes[ti.Issuer] == nil {
			v.remotes[ti.Issuer] = &remoteIssuer{issuer: ti.Issuer, opts: &v.opts}
		}
	}
	return v, nil
}

// checkMaxSkew refuses a MaxSkew option that is negative or beyond
// MaxSkewLimit.
func checkMaxSkew(d time.Duration) error {
	if d < 0 || d > MaxSkewLimit {
		return fmt.Errorf("MaxSkew %s is out of range: it must be between 0 (meaning %s) and %s", d, DefaultMaxSkew, MaxSkewLimit)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func orDefaultInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// Verify verifies rawToken (the bearer value, without "Bearer ") and
// returns what it says. Every refusal is a *TokenError, except when ctx
// ends while discovery or a key download is under way (then ctx's error,
// wrapped).
func (v *RequesterVerifier) Verify(ctx context.Context, rawToken string) (*RequesterToken, error) {
	var key [sha256.Size]byte
	if v.cache != nil && len(rawToken) <= maxTokenBytes {
		key = tokenKey(rawToken)
		if tok, ok := v.cache.get(key, v.opts.Now()); ok {
			return tok, nil
		}
	}
	p, terr := peekToken(rawToken)
	if terr != nil {
		return nil, terr
	}
	if !slices.Contains(idtoken.AllowedAlgs, p.alg) {
		return nil, badAlgorithm(p.alg)
	}
	entry, terr := v.pick(p)
	if terr != nil {
		return nil, terr
	}
	keys, err := v.remotes[entry.Issuer].keySet(ctx)
	if err != nil {
		return nil, err
	}

	now := v.opts.Now()
	skew := v.opts.MaxSkew
	// go-oidc checks exp with no leeway (and nbf with a fixed 5 minutes):
	// showing it a clock MaxSkew behind gives its exp check exactly our
	// leeway. Our own checks below bound exp, nbf and iat precisely; with
	// MaxSkew ≤ MaxSkewLimit go-oidc's nbf check is never the stricter one.
	verifier := gooidc.NewVerifier(entry.Issuer, keys, &gooidc.Config{
		ClientID:             entry.Audience,
		SupportedSigningAlgs: idtoken.AllowedAlgs,
		Now:                  func() time.Time { return now.Add(-skew) },
	})
	rec := &sigRecord{}
	_, verr := verifier.Verify(context.WithValue(ctx, sigRecorderKey{}, rec), rawToken)
	if verr != nil && ctx.Err() != nil {
		// A key download was cut short by the caller; whatever the token
		// is, it was not verified.
		return nil, fmt.Errorf("oidc: verifying token: %w", ctx.Err())
	}
	switch {
	case rec.err != nil:
		return nil, rec.err
	case !rec.verified && verr != nil:
		// go-oidc refused the token before asking for its signature.
		return nil, tokenErrorf(ReasonMalformed, verr, "the token is not a valid signed JWT: %s", idtoken.CauseText(verr))
	case !rec.verified:
		return nil, tokenErrorf(ReasonInvalidToken, nil, "the token's signature was not checked; refusing it")
	}
	tok, validFrom, terr := v.checkClaims(entry, rec.payload, now)
	if terr != nil {
		return nil, terr
	}
	if verr != nil {
		return nil, tokenErrorf(ReasonInvalidToken, verr, "the token was refused: %s", idtoken.CauseText(verr))
	}
	if v.cache != nil {
		v.cache.put(key, &cachedToken{
			tok:            tok,
			validFrom:      validFrom,
			validUntil:     tok.Expiry.Add(skew),
			keysFreshUntil: rec.keysFetched.Add(v.opts.KeyMaxAge),
			keys:           keys.keys,
			keysFetched:    rec.keysFetched,
		}, now)
		return tok.clone(), nil
	}
	return tok, nil
}

func badAlgorithm(alg string) *TokenError {
	return tokenErrorf(ReasonBadAlgorithm, nil, "the token is signed with alg %s; signoff accepts only %s (never none or HMAC): use the OIDC token your CI system issues", idtoken.Quote(alg), strings.Join(idtoken.AllowedAlgs, ", "))
}

// pick routes a token to its TrustedIssuer by its unverified iss (and aud,
// when several entries share the issuer). Nothing is trusted yet: the
// chosen entry's issuer and audience are verified afterwards.
func (v *RequesterVerifier) pick(p *peeked) (*TrustedIssuer, *TokenError) {
	idx := v.byIssuer[p.iss]
	if len(idx) == 0 {
		configured := make([]string, len(v.issuers))
		for i, ti := range v.issuers {
			configured[i] = fmt.Sprintf("%s (%s)", ti.Name, ti.Issuer)
		}
		return nil, tokenErrorf(ReasonUnknownIssuer, nil, "tokens issued by %s are not accepted; trusted issuers: %s. Use a token from one of them, or add the issuer to the requesters list of the config", idtoken.Quote(p.iss), strings.Join(configured, ", "))
	}
	if len(idx) == 1 {
		return &v.issuers[idx[0]], nil
	}
	var match []int
	var want []string
	for _, i := range idx {
		want = append(want, idtoken.Quote(v.issuers[i].Audience))
		if slices.Contains(p.aud, v.issuers[i].Audience) {
			match = append(match, i)
		}
	}
	switch len(match) {
	case 1:
		return &v.issuers[match[0]], nil
	case 0:
		return nil, tokenErrorf(ReasonWrongAudience, nil, "the token's audience is %s, but tokens from %s must be issued for one of %s: request the token with that audience", quoteList(p.aud), p.iss, strings.Join(want, ", "))
	default:
		return nil, tokenErrorf(ReasonAmbiguousAudience, nil, "the token's audience %s names more than one signoff requester configured for %s; request a token with exactly one of %s", quoteList(p.aud), p.iss, strings.Join(want, ", "))
	}
}

func quoteList(l []string) string {
	if len(l) == 0 {
		return "empty"
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = idtoken.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// checkClaims checks the verified claims against entry at time now and
// maps them into a RequesterToken. validFrom is the earliest time its nbf
// and iat checks pass (the skew included).
func (v *RequesterVerifier) checkClaims(entry *TrustedIssuer, payload []byte, now time.Time) (tok *RequesterToken, validFrom time.Time, _ *TokenError) {
	m, err := idtoken.Decode(payload)
	if err != nil {
		return nil, time.Time{}, tokenErrorf(ReasonMalformed, err, "the token's claims are not a JSON object: %s", idtoken.CauseText(err))
	}
	if terr := checkAudience(entry, m); terr != nil {
		return nil, time.Time{}, terr
	}

	skew := v.opts.MaxSkew
	exp, ok, err := idtoken.NumericDate(m, "exp")
	switch {
	case err != nil:
		return nil, time.Time{}, tokenErrorf(ReasonMalformed, err, "the token's %s", idtoken.CauseText(err))
	case !ok:
		return nil, time.Time{}, tokenErrorf(ReasonMissingClaim, nil, "the token has no exp (expiry) claim; signoff accepts only tokens that expire")
	}
	// go-oidc reads exp in whole seconds, dropping a fraction: so do we,
	// lest the token cache serve a token past the second go-oidc refuses.
	exp = time.Unix(exp.Unix(), 0)
	switch {
	case now.After(exp.Add(skew)):
		return nil, time.Time{}, tokenErrorf(ReasonExpired, nil, "the token expired at %s (now %s, allowed clock skew %s): request a fresh token", idtoken.FormatTime(exp), idtoken.FormatTime(now), skew)
	}
	nbf, ok, err := idtoken.NumericDate(m, "nbf")
	switch {
	case err != nil:
		return nil, time.Time{}, tokenErrorf(ReasonMalformed, err, "the token's %s", idtoken.CauseText(err))
	case ok && nbf.After(now.Add(skew)):
		return nil, time.Time{}, tokenErrorf(ReasonNotYetValid, nil, "the token is not valid before %s (now %s, allowed clock skew %s): check the clocks of the CI runner, the issuer and signoff", idtoken.FormatTime(nbf), idtoken.FormatTime(now), skew)
	case ok:
		validFrom = nbf.Add(-skew)
	}
	iat, ok, err := idtoken.NumericDate(m, "iat")
	switch {
	case err != nil:
		return nil, time.Time{}, tokenErrorf(ReasonMalformed, err, "the token's %s", idtoken.CauseText(err))
	case ok && iat.After(now.Add(skew)):
		return nil, time.Time{}, tokenErrorf(ReasonNotYetValid, nil, "the token claims to be issued at %s, in the future (now %s, allowed clock skew %s): check the clocks of the CI runner, the issuer and signoff", idtoken.FormatTime(iat), idtoken.FormatTime(now), skew)
	case ok && iat.Add(-skew).After(validFrom):
		validFrom = iat.Add(-skew)
	}

	tok, terr := tokenOf(entry, m)
	if terr != nil {
		return nil, time.Time{}, terr
	}
	tok.Expiry = exp
	return tok, validFrom, nil
}

// checkAudience checks the claims' iss and aud against entry.
func checkAudience(entry *TrustedIssuer, m map[string]any) *TokenError {
	if iss, _ := m["iss"].(string); iss != entry.Issuer {
		return tokenErrorf(ReasonWrongIssuer, nil, "the token's iss is %s, not %s", idtoken.Quote(iss), entry.Issuer)
	}
	aud, err := audienceOf(m["aud"])
	if err != nil {
		return tokenErrorf(ReasonMalformed, err, "the token's aud claim is neither a string nor a list of strings")
	}
	if !slices.Contains(aud, entry.Audience) && entry.Login {
		return tokenErrorf(ReasonWrongAudience, nil, "the token's audience is %s, but ID tokens from %s are accepted only when issued to signoff's command-line client %q (idp.cli_client_id): sign in with signoff login", quoteList(aud), entry.Issuer, entry.Audience)
	}
	if entry.Login {
		// OpenID Connect Core 3.1.3.7: the party the ID token was issued
		// to (azp) must be this client; an audience list that merely
		// names it may belong to a token issued to another app.
		azp, present := m["azp"]
		switch s, _ := azp.(string); {
		case present && s != entry.Audience:
			return tokenErrorf(ReasonWrongAudience, nil, "the token was issued to client %s (azp), not to signoff's command-line client %q (idp.cli_client_id): sign in with signoff login", idtoken.Quote(fmt.Sprint(azp)), entry.Audience)
		case !present && len(aud) > 1:
			return tokenErrorf(ReasonWrongAudience, nil, "the token's audience %s names several clients and no azp says which one it was issued to: signoff accepts it only when azp is its command-line client %q (idp.cli_client_id)", quoteList(aud), entry.Audience)
		}
	}
	if !slices.Contains(aud, entry.Audience) {
		return tokenErrorf(ReasonWrongAudience, nil, "the token's audience is %s, but requester %s expects %q: request the token with audience %q (GitHub Actions: core.getIDToken(%q); GitLab CI: id_tokens with aud: %s)", quoteList(aud), entry.Name, entry.Audience, entry.Audience, entry.Audience, entry.Audience)
	}
	return nil
}

// tokenOf maps claims that passed every other check into a RequesterToken
// for entry (without Expiry), refusing them without sub or the entry's
// person claim.
func tokenOf(entry *TrustedIssuer, m map[string]any) (*RequesterToken, *TokenError) {
	claims := idtoken.Flatten(m)
	sub, _ := m["sub"].(string)
	if sub == "" {
		return nil, tokenErrorf(ReasonMissingClaim, nil, "the token has no sub (subject) claim")
	}
	person := claims[entry.PersonClaim]
	if person == "" {
		return nil, tokenErrorf(ReasonMissingClaim, nil, "the token has no %q claim, which requester %s uses to name the person behind a request (person_claim); set person_claim to a claim %s puts in its tokens", entry.PersonClaim, entry.Name, entry.Issuer)
	}
	tok := &RequesterToken{
		IssuerName: entry.Name,
		Issuer:     entry.Issuer,
		Subject:    sub,
		Person:     person,
		Claims:     claims,
		Login:      entry.Login,
	}
	if entry.NameClaim != "" {
		tok.Name = claims[entry.NameClaim]
	}
	if entry.EmailClaim != "" {
		tok.Email = claims[entry.EmailClaim]
	}
	if entry.GroupsClaim != "" {
		tok.Groups = idtoken.StringList(m[entry.GroupsClaim])
		tok.GroupsClaim = entry.GroupsClaim
	}
	for _, c := range entry.HandleClaims {
		vals, err := idtoken.PersonValues(m[c])
		if err != nil {
			return nil, tokenErrorf(ReasonMalformed, err, "the token's %q claim (idp.person_claims) %s; signoff refuses the token rather than leave out a value that could name the person: ask the IdP's administrator to send fewer values in that claim", c, err)
		}
		tok.Handles = append(tok.Handles, vals...)
	}
	return tok, nil
}

func audienceOf(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("aud holds a non-string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("aud is neither a string nor a list")
}

// Discover contacts every trusted issuer that has not been discovered yet,
// and downloads its keys (both honouring DiscoveryRetry), and returns the
// failures joined. It is
// optional: Verify discovers on demand. Calling it at start-up surfaces a
// misconfigured issuer in the log before the first CI job does.
func (v *RequesterVerifier) Discover(ctx context.Context) error {
	var errs []error
	seen := map[string]bool{}
	for _, ti := range v.issuers {
		if seen[ti.Issuer] {
			continue
		}
		seen[ti.Issuer] = true
		ks, err := v.remotes[ti.Issuer].keySet(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, terr := ks.currentKeys(ctx); terr != nil {
			errs = append(errs, terr)
		}
	}
	return errors.Join(errs...)
}

// remoteIssuer is the lazily discovered state of one issuer URL.
type remoteIssuer struct {
	issuer string
	opts   *VerifierOptions

	mu          sync.Mutex
	keys        *keySet // set once discovery succeeded
	lastErr     error
	lastAttempt time.Time
	inflight    *discovery
}

type discovery struct {
	done chan struct{}
	keys *keySet
	err  error
}

// keySet returns the issuer's key set, running discovery first if it has
// not succeeded yet. A failed discovery is remembered for DiscoveryRetry:
// meanwhile callers get the remembered error without network I/O.
func (r *remoteIssuer) keySet(ctx context.Context) (*keySet, error) {
	r.mu.Lock()
	if r.keys != nil {
		defer r.mu.Unlock()
		return r.keys, nil
	}
	d := r.inflight
	if d == nil {
		now := r.opts.Now()
		if !r.lastAttempt.IsZero() && now.Before(r.lastAttempt.Add(r.opts.DiscoveryRetry)) {
			defer r.mu.Unlock()
			return nil, r.unavailable(r.lastErr)
		}
		d = &discovery{done: make(chan struct{})}
		r.inflight = d
		r.lastAttempt = now
		// Discovery outlives a caller that gives up, so the next caller
		// finds its result instead of starting over.
		go r.discover(context.WithoutCancel(ctx), d)
	}
	r.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("oidc: waiting for discovery of issuer %s: %w", r.issuer, ctx.Err())
	case <-d.done:
	}
	if d.err != nil {
		return nil, r.unavailable(d.err)
	}
	return d.keys, nil
}

func (r *remoteIssuer) unavailable(err error) *TokenError {
	var mismatch *gooidc.IssuerMismatchError
	if errors.As(err, &mismatch) {
		return tokenErrorf(ReasonIssuerUnavailable, err, "issuer %s is misconfigured: its discovery document names issuer %q; the requesters entry must match it exactly (watch for a trailing slash). Requests from it are refused until this is fixed", r.issuer, mismatch.Discovered)
	}
	return tokenErrorf(ReasonIssuerUnavailable, err, "issuer %s is unreachable: %s; requests from it are refused until it answers (signoff retries every %s)", r.issuer, idtoken.CauseText(err), r.opts.DiscoveryRetry)
}

func (r *remoteIssuer) discover(ctx context.Context, d *discovery) {
	ctx, cancel := context.WithTimeout(ctx, idtoken.FetchTimeout)
	defer cancel()
	log := r.opts.Logger
	keys, err := r.discoverKeys(ctx)
	r.mu.Lock()
	if err == nil {
		r.keys, r.lastErr = keys, nil
	} else {
		r.lastErr = err
	}
	r.inflight = nil
	r.mu.Unlock()
	if err != nil {
		log.Warn("requester issuer discovery failed; its tokens are refused until it succeeds", "issuer", r.issuer, "retry_in", r.opts.DiscoveryRetry, "err", err)
	} else {
		log.Info("requester issuer discovered", "issuer", r.issuer, "jwks_uri", keys.jwksURL)
	}
	d.keys, d.err = keys, err
	close(d.done)
}

func (r *remoteIssuer) discoverKeys(ctx context.Context) (*keySet, error) {
	provider, err := gooidc.NewProvider(gooidc.ClientContext(ctx, r.opts.HTTPClient), r.issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery: reading the discovery document: %w", err)
	}
	if err := checkJWKSURL(r.issuer, meta.JWKSURI); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return newKeySet(r.issuer, jwks.Options{
		URL:             meta.JWKSURI,
		HTTPClient:      r.opts.HTTPClient,
		Clock:           nowClock(r.opts.Now),
		RefreshInterval: r.opts.KeyRefreshInterval,
		RetryInterval:   r.opts.DiscoveryRetry,
		MaxAge:          r.opts.KeyMaxAge,
		FetchTimeout:    idtoken.FetchTimeout,
		Logger:          r.opts.Logger.With("issuer", r.issuer),
	}), nil
}

// checkJWKSURL requires an absolute jwks_uri, over https when the issuer
// itself is https.
func checkJWKSURL(issuer, jwks string) error {
	if jwks == "" {
		return errors.New("the discovery document has no jwks_uri")
	}
	u, err := url.Parse(jwks)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("the discovery document's jwks_uri %q is not an absolute http(s) URL", jwks)
	}
	if strings.HasPrefix(issuer, "https:") && u.Scheme != "https" {
		return fmt.Errorf("the discovery document's jwks_uri %q is not https", jwks)
	}
	return nil
}
