package oidc_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
)

// t0 is the fake "now" of every test.
var t0 = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)

// fakeClock is the verifier's injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// provider is an OpenID issuer on loopback: discovery plus a JWKS the test
// controls, with hit counters and fault switches.
type provider struct {
	srv      *httptest.Server
	issuer   string
	jwksPath string

	jwks testkeys.KeySet

	mu              sync.Mutex
	discoveryStatus int    // non-zero: discovery answers with this status
	claimedIssuer   string // non-empty: discovery names this issuer instead
	discoveryGate   chan struct{}

	discoveryHits atomic.Int32
}

// newProvider starts a plain-http provider whose issuer is its own URL.
func newProvider(t *testing.T, keys ...*testkeys.Key) *provider {
	p := &provider{jwksPath: "/keys"}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	p.publish(keys...)
	return p
}

// newPublicProvider starts an https provider that plays a public issuer
// (e.g. https://token.actions.githubusercontent.com); clients reach it
// through routedClient.
func newPublicProvider(t *testing.T, issuer, jwksPath string, keys ...*testkeys.Key) *provider {
	p := &provider{issuer: issuer, jwksPath: jwksPath}
	p.srv = httptest.NewTLSServer(p)
	t.Cleanup(p.srv.Close)
	p.publish(keys...)
	return p
}

func (p *provider) publish(keys ...*testkeys.Key) { p.jwks.Publish(keys...) }

func (p *provider) set(f func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *provider) baseURL() string {
	if strings.HasPrefix(p.issuer, "https://") {
		return p.issuer
	}
	return p.srv.URL
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	discoveryStatus, claimed, gate := p.discoveryStatus, p.claimedIssuer, p.discoveryGate
	p.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		p.discoveryHits.Add(1)
		if gate != nil {
			<-gate
		}
		if discoveryStatus != 0 {
			http.Error(w, "down for maintenance", discoveryStatus)
			return
		}
		iss := p.issuer
		if claimed != "" {
			iss = claimed
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              p.baseURL() + p.jwksPath,
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public", "pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "HS256", "none"},
		})
	case p.jwksPath:
		p.jwks.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// routedClient returns an HTTP client that sends requests for each public
// issuer's host to that provider's loopback listener, trusting the
// httptest certificate.
func routedClient(t *testing.T, providers ...*provider) *http.Client {
	t.Helper()
	routes := map[string]string{}
	var base *http.Transport
	for _, p := range providers {
		host := strings.TrimPrefix(p.issuer, "https://")
		host, _, _ = strings.Cut(host, "/")
		routes[host+":443"] = p.srv.Listener.Addr().String()
		base = p.srv.Client().Transport.(*http.Transport)
	}
	tr := base.Clone()
	tr.TLSClientConfig.ServerName = "example.com" // the httptest certificate's name
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := routes[addr]
		if !ok {
			return nil, fmt.Errorf("test client: no route to %s", addr)
		}
		return d.DialContext(ctx, network, to)
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

const audience = "signoff"

// claimsFor returns a valid claim set for iss at t0, with extra merged in
// (a nil value deletes a claim).
func claimsFor(iss string, extra map[string]any) map[string]any {
	c := map[string]any{
		"iss":   iss,
		"sub":   "repo:acme/api:ref:refs/heads/main",
		"aud":   audience,
		"iat":   t0.Unix(),
		"nbf":   t0.Unix(),
		"exp":   t0.Add(5 * time.Minute).Unix(),
		"actor": "octocat",
	}
	return testkeys.Claims(c, extra)
}

func trusted(p *provider) oidc.TrustedIssuer {
	return oidc.TrustedIssuer{Name: "ci", Issuer: p.issuer, Audience: audience, PersonClaim: "actor"}
}

func newVerifier(t *testing.T, clk *fakeClock, client *http.Client, opts oidc.VerifierOptions, issuers ...oidc.TrustedIssuer) *oidc.RequesterVerifier {
	t.Helper()
	opts.Now = clk.Now
	if opts.HTTPClient == nil {
		opts.HTTPClient = client
	}
	v, err := oidc.NewRequesterVerifier(issuers, opts)
	if err != nil {
		t.Fatalf("NewRequesterVerifier: %v", err)
	}
	return v
}

// start serves keys from a new provider and returns it with a verifier
// that trusts it, made with opts, on a new clock.
func start(t *testing.T, opts oidc.VerifierOptions, keys ...*testkeys.Key) (*provider, *fakeClock, *oidc.RequesterVerifier) {
	t.Helper()
	p := newProvider(t, keys...)
	clk := newClock()
	return p, clk, newVerifier(t, clk, p.srv.Client(), opts, trusted(p))
}

// startTrusting serves key from a new provider and returns it with a
// verifier trusting it as trusted(p), changed by edit first.
func startTrusting(t *testing.T, key *testkeys.Key, edit func(*oidc.TrustedIssuer)) (*provider, *oidc.RequesterVerifier) {
	t.Helper()
	p := newProvider(t, key)
	ti := trusted(p)
	edit(&ti)
	return p, newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, ti)
}

// wantJWKSHits fails t unless the provider's key set has been fetched want
// times.
func wantJWKSHits(t *testing.T, p *provider, want int) {
	t.Helper()
	if n := p.jwks.Hits(); n != want {
		t.Fatalf("jwks hits = %d, want %d", n, want)
	}
}

// wantRefusal checks that err is a *TokenError with reason, whose message
// contains every want and none of the token's parts.
func wantRefusal(t *testing.T, err error, raw string, reason oidc.Reason, want ...string) *oidc.TokenError {
	t.Helper()
	var te *oidc.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want a *TokenError with reason %s", err, err, reason)
	}
	if te.Reason != reason {
		t.Fatalf("reason = %s, want %s (message: %s)", te.Reason, reason, te.Message)
	}
	t.Logf("%s: %s", te.Reason, te.Message)
	for _, w := range want {
		if !strings.Contains(te.Message, w) {
			t.Errorf("message %q does not contain %q", te.Message, w)
		}
	}
	assertNoTokenIn(t, raw, err)
	return te
}

// refuse verifies raw with v and checks the refusal as wantRefusal does.
func refuse(t *testing.T, v *oidc.RequesterVerifier, raw string, reason oidc.Reason, want ...string) *oidc.TokenError {
	t.Helper()
	_, err := v.Verify(context.Background(), raw)
	return wantRefusal(t, err, raw, reason, want...)
}

// assertNoTokenIn fails if the error chain's text contains the token or
// any sizeable part of its encoding.
func assertNoTokenIn(t *testing.T, raw string, err error) {
	t.Helper()
	var texts []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error())
	}
	for _, text := range texts {
		for _, part := range strings.Split(raw, ".") {
			if len(part) >= 16 && strings.Contains(text, part) {
				t.Fatalf("error text contains part of the token: %q", text)
			}
		}
	}
}

func mustVerify(t *testing.T, v *oidc.RequesterVerifier, raw string) *oidc.RequesterToken {
	t.Helper()
	tok, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return tok
}

func TestVerifyMapsClaims(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, v := startTrusting(t, k, func(ti *oidc.TrustedIssuer) { ti.NameClaim, ti.EmailClaim, ti.GroupsClaim = "name", "email", "groups" })

	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{
		"name":          "The Octocat",
		"email":         "octocat@example.com",
		"groups":        []any{"sre", 7, "dev"},
		"repository":    "acme/api",
		"run_id":        json.Number("12345678901234567890"), // beyond int64 and float64 precision
		"ref_protected": true,
		"nested":        map[string]any{"a": "b"},
		"list":          []string{"x"},
		"nothing":       nil,
	}))
	tok := mustVerify(t, v, raw)

	if tok.IssuerName != "ci" || tok.Issuer != p.issuer {
		t.Errorf("issuer = %s %s", tok.IssuerName, tok.Issuer)
	}
	if tok.Subject != "repo:acme/api:ref:refs/heads/main" || tok.Person != "octocat" {
		t.Errorf("subject, person = %q, %q", tok.Subject, tok.Person)
	}
	if tok.Name != "The Octocat" || tok.Email != "octocat@example.com" {
		t.Errorf("name, email = %q, %q", tok.Name, tok.Email)
	}
	if strings.Join(tok.Groups, ",") != "sre,dev" {
		t.Errorf("groups = %q", tok.Groups)
	}
	if !tok.Expiry.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("expiry = %s", tok.Expiry)
	}
	for k, want := range map[string]string{
		"repository":    "acme/api",
		"run_id":        "12345678901234567890",
		"ref_protected": "true",
		"actor":         "octocat",
		"iss":           p.issuer,
		"exp":           fmt.Sprint(t0.Add(5 * time.Minute).Unix()),
	} {
		if got := tok.Claims[k]; got != want {
			t.Errorf("Claims[%s] = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"nested", "list", "nothing", "groups"} {
		if _, ok := tok.Claims[k]; ok {
			t.Errorf("Claims has %s, which is not a string, number or boolean", k)
		}
	}
}

func TestVerifyDefaultPersonClaimIsSub(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, v := startTrusting(t, k, func(ti *oidc.TrustedIssuer) { ti.PersonClaim = "" })
	tok := mustVerify(t, v, k.Sign(t, claimsFor(p.issuer, nil)))
	if tok.Person != tok.Subject || tok.Person == "" {
		t.Errorf("person = %q, want the subject %q", tok.Person, tok.Subject)
	}
}

func TestVerifyEveryAllowedAlgorithm(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			k := testkeys.New(t, "k-"+string(alg), alg)
			p := newProvider(t, k)
			v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, trusted(p))
			mustVerify(t, v, k.Sign(t, claimsFor(p.issuer, nil)))
		})
	}
}

func TestVerifyClockSkew(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{MaxSkew: time.Minute}, trusted(p))
	past := t0.Add(-10 * time.Minute).Unix()
	accepted := map[string]map[string]any{
		"expired 59s ago":        {"iat": past, "nbf": past, "exp": t0.Add(-59 * time.Second).Unix()},
		"expired exactly 60s":    {"iat": past, "nbf": past, "exp": t0.Add(-60 * time.Second).Unix()},
		"nbf 59s ahead":          {"nbf": t0.Add(59 * time.Second).Unix()},
		"iat 60s ahead":          {"iat": t0.Add(60 * time.Second).Unix(), "nbf": nil},
		"no nbf, no iat":         {"iat": nil, "nbf": nil},
		"fractional NumericDate": {"exp": float64(t0.Unix()) + 30.5},
	}
	for name, extra := range accepted {
		t.Run(name, func(t *testing.T) {
			mustVerify(t, v, k.Sign(t, claimsFor(p.issuer, extra)))
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	good := testkeys.New(t, "k1", jose.ES256)
	rsaKey := testkeys.New(t, "rsa1", jose.RS256)
	p := newProvider(t, good, rsaKey)
	other := newProvider(t) // a second configured issuer, never contacted here
	otherTI := trusted(other)
	otherTI.Name = "other"
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{MaxSkew: time.Minute}, trusted(p), otherTI)

	forgedSameKid := testkeys.New(t, "k1", jose.ES256)
	forgedNewKid := testkeys.New(t, "attacker", jose.ES256)
	forgedNoKid := testkeys.New(t, "", jose.ES256)
	rs384 := testkeys.New(t, "rsa1", jose.RS384)
	past := t0.Add(-10 * time.Minute).Unix()

	cases := []struct {
		name   string
		raw    func() string
		reason oidc.Reason
		want   []string
	}{
		{"wrong audience", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"aud": "another-service"}))
		}, oidc.ReasonWrongAudience, []string{`"another-service"`, `expects "signoff"`}},
		{"audience list without ours", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"aud": []string{"a", "b"}}))
		}, oidc.ReasonWrongAudience, nil},
		{"no audience", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"aud": nil}))
		}, oidc.ReasonWrongAudience, nil},
		{"expired beyond skew", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"iat": past, "nbf": past, "exp": t0.Add(-61 * time.Second).Unix()}))
		}, oidc.ReasonExpired, []string{"expired at 2025-06-02T08:58:59Z", "request a fresh token"}},
		{"nbf beyond skew", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"nbf": t0.Add(61 * time.Second).Unix()}))
		}, oidc.ReasonNotYetValid, []string{"not valid before"}},
		{"nbf within go-oidc's 5 minutes but beyond ours", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"nbf": t0.Add(4 * time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix()}))
		}, oidc.ReasonNotYetValid, nil},
		{"iat in the future", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"iat": t0.Add(2 * time.Minute).Unix(), "nbf": nil}))
		}, oidc.ReasonNotYetValid, []string{"in the future"}},
		{"no exp", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"exp": nil}))
		}, oidc.ReasonMissingClaim, []string{"exp"}},
		{"exp not a number", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"exp": "tomorrow"}))
		}, oidc.ReasonMalformed, nil},
		{"exp absurdly far", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"exp": 1e300}))
		}, oidc.ReasonMalformed, nil},
		{"no sub", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"sub": nil}))
		}, oidc.ReasonMissingClaim, []string{"sub"}},
		{"no person claim", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"actor": nil}))
		}, oidc.ReasonMissingClaim, []string{`"actor"`, "person_claim"}},
		{"configured iss, signed by another key under the real kid", func() string {
			return forgedSameKid.Sign(t, claimsFor(p.issuer, nil))
		}, oidc.ReasonBadSignature, []string{p.issuer}},
		{"configured iss, signed by another key under its own kid", func() string {
			return forgedNewKid.Sign(t, claimsFor(p.issuer, nil))
		}, oidc.ReasonUnknownKey, []string{`"attacker"`, p.issuer}},
		{"configured iss, signed by another key without kid", func() string {
			return forgedNoKid.Sign(t, claimsFor(p.issuer, nil))
		}, oidc.ReasonBadSignature, nil},
		{"another configured issuer's iss on our token", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"iss": other.issuer}))
		}, oidc.ReasonUnknownKey, []string{other.issuer}}, // other does not publish k1
		{"unconfigured iss", func() string {
			return good.Sign(t, claimsFor("https://evil.example.com", nil))
		}, oidc.ReasonUnknownIssuer, []string{`"https://evil.example.com"`, "ci (" + p.issuer + ")", "other (" + other.issuer + ")"}},
		{"alg none", func() string {
			return unsigned(t, map[string]any{"alg": "none", "kid": "k1"}, claimsFor(p.issuer, nil))
		}, oidc.ReasonBadAlgorithm, []string{`"none"`}},
		{"alg none with a signature", func() string {
			return unsigned(t, map[string]any{"alg": "none"}, claimsFor(p.issuer, nil)) + "c2ln"
		}, oidc.ReasonBadAlgorithm, nil},
		{"HS256 keyed with the RSA public key (PEM)", func() string {
			return hmacSigned(t, "rsa1", publicPEM(t, rsaKey), claimsFor(p.issuer, nil))
		}, oidc.ReasonBadAlgorithm, []string{`"HS256"`, "never none or HMAC"}},
		{"HS256 keyed with the RSA public key (DER)", func() string {
			der, _ := x509.MarshalPKIXPublicKey(rsaKey.Priv.Public())
			return hmacSigned(t, "rsa1", der, claimsFor(p.issuer, nil))
		}, oidc.ReasonBadAlgorithm, nil},
		{"RS384 (asymmetric but not allowed)", func() string {
			return rs384.Sign(t, claimsFor(p.issuer, nil))
		}, oidc.ReasonBadAlgorithm, nil},
		{"RS256 token naming the ES256 key", func() string {
			k := testkeys.New(t, "k1", jose.RS256)
			return k.Sign(t, claimsFor(p.issuer, nil))
		}, oidc.ReasonBadAlgorithm, nil},
		{"tampered payload", func() string {
			raw := good.Sign(t, claimsFor(p.issuer, nil))
			parts := strings.Split(raw, ".")
			parts[1] = b64(t, claimsFor(p.issuer, map[string]any{"actor": "mallory"}))
			return strings.Join(parts, ".")
		}, oidc.ReasonBadSignature, nil},
		{"tampered header", func() string {
			raw := good.Sign(t, claimsFor(p.issuer, nil))
			parts := strings.Split(raw, ".")
			parts[0] = b64(t, map[string]any{"alg": "ES256", "kid": "k1", "typ": "at+jwt"})
			return strings.Join(parts, ".")
		}, oidc.ReasonBadSignature, nil},
		{"truncated signature", func() string {
			raw := good.Sign(t, claimsFor(p.issuer, nil))
			return raw[:len(raw)-4]
		}, oidc.ReasonBadSignature, nil},
		{"empty", func() string { return "" }, oidc.ReasonMalformed, []string{"Authorization: Bearer"}},
		{"not a JWT", func() string { return "ghp_0123456789abcdef0123456789abcdef0123" }, oidc.ReasonMalformed, []string{"not a JWT"}},
		{"two parts", func() string { return "eyJhbGciOiJFUzI1NiJ9.e30" }, oidc.ReasonMalformed, nil},
		{"JWE", func() string { return "a.b.c.d.e" }, oidc.ReasonMalformed, []string{"encrypted"}},
		{"header not base64url", func() string { return "%%%.e30.c2ln" }, oidc.ReasonMalformed, nil},
		{"header with padding", func() string {
			return base64.URLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"k1"}`)) + "." + b64(t, claimsFor(p.issuer, nil)) + ".c2ln"
		}, oidc.ReasonMalformed, nil},
		{"header not JSON", func() string {
			return base64.RawURLEncoding.EncodeToString([]byte("alg=ES256")) + "." + b64(t, claimsFor(p.issuer, nil)) + ".c2ln"
		}, oidc.ReasonMalformed, nil},
		{"header alg in capitals", func() string {
			return unsigned(t, map[string]any{"ALG": "ES256", "kid": "k1"}, claimsFor(p.issuer, nil)) + "c2ln"
		}, oidc.ReasonMalformed, nil},
		{"claims a JSON array", func() string {
			return b64(t, map[string]any{"alg": "ES256"}) + "." + base64.RawURLEncoding.EncodeToString([]byte(`["iss"]`)) + ".c2ln"
		}, oidc.ReasonMalformed, nil},
		{"no iss", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"iss": nil}))
		}, oidc.ReasonMalformed, []string{"iss"}},
		{"iss not a string", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"iss": 42}))
		}, oidc.ReasonMalformed, nil},
		{"aud not strings", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"aud": []any{"signoff", 1}}))
		}, oidc.ReasonMalformed, nil},
		{"oversized", func() string {
			return good.Sign(t, claimsFor(p.issuer, map[string]any{"padding": strings.Repeat("x", 20000)}))
		}, oidc.ReasonMalformed, []string{"at most"}},
		{"JSON serialization instead of compact", func() string {
			return `{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJFUzI1NiJ9","signature":"c2ln"}]}`
		}, oidc.ReasonMalformed, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.raw()
			tok, err := v.Verify(context.Background(), raw)
			if err == nil {
				t.Fatalf("accepted: %+v", tok)
			}
			wantRefusal(t, err, raw, c.reason, c.want...)
		})
	}
}

// unsigned builds header.payload. with an empty signature.
func unsigned(t *testing.T, header, claims map[string]any) string {
	return b64(t, header) + "." + b64(t, claims) + "."
}

// hmacSigned signs like an attacker who uses the issuer's public key bytes
// as an HMAC secret.
func hmacSigned(t *testing.T, kid string, secret []byte, claims map[string]any) string {
	in := b64(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + b64(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func publicPEM(t *testing.T, k *testkeys.Key) []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func b64(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestConstructorDoesNoNetworkIO(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, trusted(p))
	if n := int(p.discoveryHits.Load()) + p.jwks.Hits(); n != 0 {
		t.Fatalf("constructor made %d requests", n)
	}
}

func TestDiscoveryDownThenBack(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	p.set(func(p *provider) { p.discoveryStatus = http.StatusServiceUnavailable })
	clk := newClock()
	v := newVerifier(t, clk, p.srv.Client(), oidc.VerifierOptions{DiscoveryRetry: 10 * time.Second}, trusted(p))
	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"exp": t0.Add(time.Hour).Unix()}))

	refuse(t, v, raw, oidc.ReasonIssuerUnavailable,
		"issuer "+p.issuer+" is unreachable", "503", "requests from it are refused until it answers")
	if n := p.discoveryHits.Load(); n != 1 {
		t.Fatalf("discovery hits = %d, want 1", n)
	}

	// Within DiscoveryRetry the failure is remembered: no new request,
	// even though the issuer is back.
	p.set(func(p *provider) { p.discoveryStatus = 0 })
	clk.Advance(5 * time.Second)
	refuse(t, v, raw, oidc.ReasonIssuerUnavailable)
	if n := p.discoveryHits.Load(); n != 1 {
		t.Fatalf("discovery hits = %d, want 1 (retry too early)", n)
	}

	clk.Advance(5 * time.Second)
	mustVerify(t, v, raw)
	if n := p.discoveryHits.Load(); n != 2 {
		t.Fatalf("discovery hits = %d, want 2", n)
	}
	mustVerify(t, v, raw)
	if n := p.discoveryHits.Load(); n != 2 {
		t.Fatalf("discovery hits = %d after success, want 2 (cached)", n)
	}
}

func TestKeySetDownThenBack(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	p.jwks.SetStatus(http.StatusBadGateway)
	clk := newClock()
	v := newVerifier(t, clk, p.srv.Client(), oidc.VerifierOptions{DiscoveryRetry: 10 * time.Second}, trusted(p))
	raw := k.Sign(t, claimsFor(p.issuer, nil))

	refuse(t, v, raw, oidc.ReasonIssuerUnavailable, "is unreachable", "502")
	p.jwks.SetStatus(0)
	refuse(t, v, raw, oidc.ReasonIssuerUnavailable)
	if n := p.jwks.Hits(); n != 1 {
		t.Fatalf("jwks hits = %d, want 1 (retry too early)", n)
	}
	clk.Advance(10 * time.Second)
	mustVerify(t, v, raw)
}

func TestUnreachableIssuer(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	p.srv.Close() // nothing listens there any more
	v := newVerifier(t, newClock(), &http.Client{Timeout: 5 * time.Second}, oidc.VerifierOptions{}, trusted(p))
	raw := k.Sign(t, claimsFor(p.issuer, nil))
	refuse(t, v, raw, oidc.ReasonIssuerUnavailable, "issuer "+p.issuer+" is unreachable")
	if err := v.Discover(context.Background()); err == nil {
		t.Fatal("Discover succeeded against a closed issuer")
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	p.set(func(p *provider) { p.claimedIssuer = p.issuer + "/" })
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, trusted(p))
	raw := k.Sign(t, claimsFor(p.issuer, nil))
	refuse(t, v, raw, oidc.ReasonIssuerUnavailable, "misconfigured", "trailing slash")
}

func TestDiscoverContactsIssuersEarly(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, trusted(p))
	if err := v.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, j := p.discoveryHits.Load(), p.jwks.Hits(); d != 1 || j != 1 {
		t.Fatalf("hits: discovery %d, jwks %d; want 1, 1", d, j)
	}
	mustVerify(t, v, k.Sign(t, claimsFor(p.issuer, nil)))
	if d, j := p.discoveryHits.Load(), p.jwks.Hits(); d != 1 || j != 1 {
		t.Fatalf("hits after Verify: discovery %d, jwks %d; want 1, 1", d, j)
	}
}

func TestCallerGivesUpDuringDiscovery(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	gate := make(chan struct{})
	p.set(func(p *provider) { p.discoveryGate = gate })
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, trusted(p))
	raw := k.Sign(t, claimsFor(p.issuer, nil))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := v.Verify(ctx, raw)
		done <- err
	}()
	testenv.Eventually(t, "one discovery fetch", func() bool { return p.discoveryHits.Load() == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertNoTokenIn(t, raw, err)
	// The discovery the caller abandoned completes; the next caller uses it.
	p.set(func(p *provider) { p.discoveryGate = nil })
	close(gate)
	mustVerify(t, v, raw)
	if n := p.discoveryHits.Load(); n != 1 {
		t.Fatalf("discovery hits = %d, want 1", n)
	}
}

func TestKeyRotationAddsKid(t *testing.T) {
	k1 := testkeys.New(t, "k1", jose.ES256)
	k2 := testkeys.New(t, "k2", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{KeyRefreshInterval: time.Minute}, k1)
	long := map[string]any{"exp": t0.Add(time.Hour).Unix()}

	mustVerify(t, v, k1.Sign(t, claimsFor(p.issuer, long)))
	p.publish(k1, k2)

	// Right after the last download, the new kid is not fetched yet.
	clk.Advance(10 * time.Second)
	raw2 := k2.Sign(t, claimsFor(p.issuer, long))
	refuse(t, v, raw2, oidc.ReasonUnknownKey, `"k2"`, "retry")
	wantJWKSHits(t, p, 1)

	// Once the refresh interval has passed, the first token naming the new
	// kid refreshes the set and is accepted; old keys still work.
	clk.Advance(50 * time.Second)
	mustVerify(t, v, raw2)
	mustVerify(t, v, k1.Sign(t, claimsFor(p.issuer, long)))
	wantJWKSHits(t, p, 2)
}

func TestWithdrawnKeyStopsBeingTrusted(t *testing.T) {
	k1 := testkeys.New(t, "k1", jose.ES256)
	k2 := testkeys.New(t, "k2", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{KeyMaxAge: 10 * time.Minute}, k1)
	raw := k1.Sign(t, claimsFor(p.issuer, map[string]any{"exp": t0.Add(time.Hour).Unix()}))
	mustVerify(t, v, raw)

	p.publish(k2)
	clk.Advance(5 * time.Minute)
	mustVerify(t, v, raw) // cached keys are still fresh
	clk.Advance(5 * time.Minute)
	refuse(t, v, raw, oidc.ReasonUnknownKey)
	wantJWKSHits(t, p, 2)
}

func TestStaleKeysKeptWhenRefreshFails(t *testing.T) {
	k1 := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{KeyMaxAge: 10 * time.Minute}, k1)
	raw := k1.Sign(t, claimsFor(p.issuer, map[string]any{"exp": t0.Add(time.Hour).Unix()}))
	mustVerify(t, v, raw)
	p.jwks.SetStatus(http.StatusInternalServerError)
	clk.Advance(11 * time.Minute)
	mustVerify(t, v, raw)
	wantJWKSHits(t, p, 2)
	raw2 := testkeys.New(t, "k2", jose.ES256).Sign(t, claimsFor(p.issuer, map[string]any{"exp": t0.Add(time.Hour).Unix()}))
	refuse(t, v, raw2, oidc.ReasonUnknownKey, `"k2"`, "fetching them again failed", "500")
}

func TestKidSprayingIsRateLimited(t *testing.T) {
	k1 := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{KeyRefreshInterval: time.Minute}, k1)
	mustVerify(t, v, k1.Sign(t, claimsFor(p.issuer, nil)))

	var sprayed []string
	for range 40 {
		var kid [8]byte
		_, _ = rand.Read(kid[:])
		k := testkeys.New(t, hex.EncodeToString(kid[:]), jose.ES256)
		sprayed = append(sprayed, k.Sign(t, claimsFor(p.issuer, map[string]any{"exp": t0.Add(time.Hour).Unix()})))
	}
	testkeys.CheckPacedRefresh(t, testkeys.PacedRefresh{
		Tokens: len(sprayed),
		Verify: func(i int) error {
			_, err := v.Verify(context.Background(), sprayed[i])
			return err
		},
		Refused: func(err error) bool {
			var te *oidc.TokenError
			return errors.As(err, &te) && te.Reason == oidc.ReasonUnknownKey
		},
		Hits:    p.jwks.Hits,
		Advance: clk.Advance,
		Next:    61 * time.Second,
		Within:  30 * time.Second,
	})
}

func TestConcurrentFirstUse(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, trusted(p))
	raw := k.Sign(t, claimsFor(p.issuer, nil))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), raw); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if d, j := p.discoveryHits.Load(), p.jwks.Hits(); d != 1 || j != 1 {
		t.Fatalf("hits: discovery %d, jwks %d; want 1, 1", d, j)
	}
}

func TestIssuersSharingAnIssuerURLRouteByAudience(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	a := oidc.TrustedIssuer{Name: "ci-a", Issuer: p.issuer, Audience: "signoff-a"}
	b := oidc.TrustedIssuer{Name: "ci-b", Issuer: p.issuer, Audience: "signoff-b"}
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, a, b)

	tok := mustVerify(t, v, k.Sign(t, claimsFor(p.issuer, map[string]any{"aud": "signoff-b"})))
	if tok.IssuerName != "ci-b" {
		t.Fatalf("issuer name = %s, want ci-b", tok.IssuerName)
	}
	tok = mustVerify(t, v, k.Sign(t, claimsFor(p.issuer, map[string]any{"aud": []string{"x", "signoff-a"}})))
	if tok.IssuerName != "ci-a" {
		t.Fatalf("issuer name = %s, want ci-a", tok.IssuerName)
	}
	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"aud": []string{"signoff-a", "signoff-b"}}))
	refuse(t, v, raw, oidc.ReasonAmbiguousAudience)
	raw = k.Sign(t, claimsFor(p.issuer, map[string]any{"aud": "signoff"}))
	refuse(t, v, raw, oidc.ReasonWrongAudience, `"signoff-a"`, `"signoff-b"`)
	if n := p.discoveryHits.Load(); n != 1 {
		t.Fatalf("discovery hits = %d, want 1 (shared)", n)
	}
}

func TestGitHubActionsAndGitLabCITokens(t *testing.T) {
	ghKey := testkeys.New(t, "38826b17-6a30-5f9b-b169-8beb8202f723", jose.RS256)
	glKey := testkeys.New(t, "kewiQq9jiC84CvSsJYOB-N6A8WFLSV20Mb-y7IlWDSQ", jose.RS256)
	gh := newPublicProvider(t, "https://token.actions.githubusercontent.com", "/.well-known/jwks", ghKey)
	gl := newPublicProvider(t, "https://gitlab.com", "/oauth/discovery/keys", glKey)
	issuers := []oidc.TrustedIssuer{
		{Name: "github", Issuer: "https://token.actions.githubusercontent.com", Audience: "signoff", PersonClaim: "actor"},
		{Name: "gitlab", Issuer: "https://gitlab.com", Audience: "https://signoff.example.com", PersonClaim: "user_login", EmailClaim: "user_email"},
	}
	v := newVerifier(t, newClock(), routedClient(t, gh, gl), oidc.VerifierOptions{}, issuers...)

	// Shaped like GitHub's documented example token.
	ghClaims := map[string]any{
		"jti":                   "example-id",
		"sub":                   "repo:acme/api:environment:production",
		"environment":           "production",
		"aud":                   "signoff",
		"ref":                   "refs/heads/main",
		"sha":                   "example-sha",
		"repository":            "acme/api",
		"repository_owner":      "acme",
		"actor_id":              "12",
		"repository_visibility": "private",
		"repository_id":         "74",
		"repository_owner_id":   "65",
		"run_id":                "9876543210",
		"run_number":            "10",
		"run_attempt":           "2",
		"runner_environment":    "github-hosted",
		"actor":                 "octocat",
		"workflow":              "deploy",
		"head_ref":              "",
		"base_ref":              "",
		"event_name":            "workflow_dispatch",
		"ref_type":              "branch",
		"ref_protected":         "true",
		"workflow_ref":          "acme/api/.github/workflows/deploy.yml@refs/heads/main",
		"workflow_sha":          "example-sha",
		"job_workflow_ref":      "acme/api/.github/workflows/deploy.yml@refs/heads/main",
		"iss":                   "https://token.actions.githubusercontent.com",
		"nbf":                   t0.Add(-5 * time.Second).Unix(),
		"exp":                   t0.Add(5 * time.Minute).Unix(),
		"iat":                   t0.Unix(),
	}
	tok := mustVerify(t, v, ghKey.Sign(t, ghClaims))
	if tok.IssuerName != "github" || tok.Person != "octocat" || tok.Subject != "repo:acme/api:environment:production" {
		t.Errorf("github token: %s %q %q", tok.IssuerName, tok.Person, tok.Subject)
	}
	for k, want := range map[string]string{
		"repository": "acme/api", "ref": "refs/heads/main", "environment": "production",
		"run_id": "9876543210", "run_attempt": "2", "actor": "octocat",
		"workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main", "head_ref": "",
	} {
		if got, ok := tok.Claims[k]; !ok || got != want {
			t.Errorf("github Claims[%s] = %q (present %v), want %q", k, got, ok, want)
		}
	}

	// Shaped like GitLab's documented id_token.
	glClaims := map[string]any{
		"namespace_id":          "72",
		"namespace_path":        "acme",
		"project_id":            "20",
		"project_path":          "acme/api",
		"user_id":               "5",
		"user_login":            "alice",
		"user_email":            "alice@example.com",
		"user_access_level":     "maintainer",
		"pipeline_id":           "574",
		"pipeline_source":       "push",
		"job_id":                "302",
		"ref":                   "main",
		"ref_type":              "branch",
		"ref_path":              "refs/heads/main",
		"ref_protected":         "true",
		"environment":           "production",
		"environment_protected": "true",
		"deployment_tier":       "production",
		"runner_id":             1,
		"runner_environment":    "self-hosted",
		"sha":                   "714a629c0b401fdce83e847fc9589983fc6f46bc",
		"project_visibility":    "private",
		"ci_config_ref_uri":     "gitlab.com/acme/api//.gitlab-ci.yml@refs/heads/main",
		"jti":                   "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
		"iss":                   "https://gitlab.com",
		"iat":                   t0.Unix(),
		"nbf":                   t0.Add(-5 * time.Second).Unix(),
		"exp":                   t0.Add(time.Hour).Unix(),
		"sub":                   "project_path:acme/api:ref_type:branch:ref:main",
		"aud":                   "https://signoff.example.com",
	}
	tok = mustVerify(t, v, glKey.Sign(t, glClaims))
	if tok.IssuerName != "gitlab" || tok.Person != "alice" || tok.Email != "alice@example.com" {
		t.Errorf("gitlab token: %s %q %q", tok.IssuerName, tok.Person, tok.Email)
	}
	for k, want := range map[string]string{
		"project_path": "acme/api", "ref": "main", "pipeline_id": "574", "user_login": "alice",
		"environment": "production", "runner_id": "1",
	} {
		if got := tok.Claims[k]; got != want {
			t.Errorf("gitlab Claims[%s] = %q, want %q", k, got, want)
		}
	}

	// GitLab's key cannot vouch for a GitHub token.
	ghClaims["actor"] = "mallory"
	raw := glKey.Sign(t, ghClaims)
	refuse(t, v, raw, oidc.ReasonUnknownKey)
}

func TestNewRequesterVerifierRefusesBadConfig(t *testing.T) {
	ok := oidc.TrustedIssuer{Name: "github", Issuer: "https://token.actions.githubusercontent.com", Audience: "signoff"}
	with := func(f func(*oidc.TrustedIssuer)) []oidc.TrustedIssuer {
		ti := ok
		f(&ti)
		return []oidc.TrustedIssuer{ti}
	}
	cases := map[string]struct {
		issuers []oidc.TrustedIssuer
		opts    oidc.VerifierOptions
		want    string
	}{
		"none":               {nil, oidc.VerifierOptions{}, "no requester issuers"},
		"no name":            {with(func(ti *oidc.TrustedIssuer) { ti.Name = "" }), oidc.VerifierOptions{}, "no name"},
		"no audience":        {with(func(ti *oidc.TrustedIssuer) { ti.Audience = "" }), oidc.VerifierOptions{}, "no audience"},
		"no issuer":          {with(func(ti *oidc.TrustedIssuer) { ti.Issuer = "" }), oidc.VerifierOptions{}, "no issuer URL"},
		"relative issuer":    {with(func(ti *oidc.TrustedIssuer) { ti.Issuer = "token.actions.githubusercontent.com" }), oidc.VerifierOptions{}, "absolute"},
		"http issuer":        {with(func(ti *oidc.TrustedIssuer) { ti.Issuer = "http://gitlab.example.com" }), oidc.VerifierOptions{}, "only https"},
		"issuer with query":  {with(func(ti *oidc.TrustedIssuer) { ti.Issuer = "https://gitlab.com?x=1" }), oidc.VerifierOptions{}, "no query"},
		"duplicate name":     {[]oidc.TrustedIssuer{ok, {Name: "github", Issuer: "https://gitlab.com", Audience: "x"}}, oidc.VerifierOptions{}, "used twice"},
		"duplicate iss+aud":  {[]oidc.TrustedIssuer{ok, {Name: "gh2", Issuer: ok.Issuer, Audience: ok.Audience}}, oidc.VerifierOptions{}, "same issuer and audience"},
		"negative skew":      {[]oidc.TrustedIssuer{ok}, oidc.VerifierOptions{MaxSkew: -time.Second}, "MaxSkew"},
		"huge skew":          {[]oidc.TrustedIssuer{ok}, oidc.VerifierOptions{MaxSkew: time.Hour}, "MaxSkew"},
		"negative intervals": {[]oidc.TrustedIssuer{ok}, oidc.VerifierOptions{KeyRefreshInterval: -1}, "negative"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := oidc.NewRequesterVerifier(c.issuers, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	if _, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{
		ok,
		{Name: "dev", Issuer: "http://127.0.0.1:8080/dev/oidc", Audience: "signoff"},
		{Name: "gh-other", Issuer: ok.Issuer, Audience: "other"},
	}, oidc.VerifierOptions{}); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}
