package oidc_test

// Attacks on CI bearer tokens that go beyond the plain refusals of
// requester_test.go: keys injected through JOSE header members, critical
// extensions, look-alike issuers, odd audience types, duplicate claim
// names and NUL bytes in claims.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
)

// countingServer is a loopback server an attacker controls: it serves
// body for every path and counts the requests it gets.
type countingServer struct {
	srv  *httptest.Server
	hits atomic.Int32
}

func newCountingServer(t *testing.T, contentType string, body []byte) *countingServer {
	t.Helper()
	c := &countingServer{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// selfSignedDER returns a self-signed certificate for k's public key, as
// an attacker would put in x5c.
func selfSignedDER(t *testing.T, k *testkeys.Key) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "token.actions.githubusercontent.com"},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Priv.Public(), k.Priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// injectionHeaders returns the header members through which a token could
// name attacker's key: inline (jwk, x5c) or by URL on servers the attacker
// runs (jku, x5u), whose hit counters are returned with them.
func injectionHeaders(t *testing.T, attacker *testkeys.Key) (headers map[string]map[string]any, jku, x5u *countingServer) {
	t.Helper()
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{attacker.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	der := selfSignedDER(t, attacker)
	jku = newCountingServer(t, "application/json", set)
	x5u = newCountingServer(t, "application/pkix-cert", der)
	headers = map[string]map[string]any{
		"jwk": {"jwk": attacker.Public()},
		"jku": {"jku": jku.srv.URL + "/jwks.json"},
		"x5u": {"x5u": x5u.srv.URL + "/cert.der"},
		"x5c": {"x5c": []string{base64.StdEncoding.EncodeToString(der)}},
		"all": {
			"jwk": attacker.Public(),
			"jku": jku.srv.URL + "/jwks.json",
			"x5u": x5u.srv.URL + "/cert.der",
			"x5c": []string{base64.StdEncoding.EncodeToString(der)},
		},
	}
	return headers, jku, x5u
}

// TestThreatKeyInjectionHeaders signs tokens with an attacker's key and
// names that key in the header (jwk, jku, x5u, x5c). signoff must trust
// only the keys its configured issuer publishes: every such token is
// refused, and the URLs in jku and x5u are never fetched. A token signed
// by the real key with the same headers verifies with the real key and
// still fetches nothing from them.
func TestThreatKeyInjectionHeaders(t *testing.T) {
	real := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, real)
	// The headers the real key's tokens carry name a key nobody publishes.
	headers, jku, x5u := injectionHeaders(t, testkeys.New(t, "injected", jose.ES256))
	attackerKids := map[string]*testkeys.Key{
		"the real kid":              testkeys.New(t, "k1", jose.ES256),
		"its own kid":               testkeys.New(t, "attacker", jose.ES256),
		"no kid":                    testkeys.New(t, "", jose.ES256),
		"its own kid, RS256":        testkeys.New(t, "attacker-rsa", jose.RS256),
		"the real kid, another alg": testkeys.New(t, "k1", jose.EdDSA),
	}

	for kidCase, attacker := range attackerKids {
		// Each attacker names its own key in the header.
		own, ownJKU, ownX5U := injectionHeaders(t, attacker)
		for hname, h := range own {
			t.Run("attacker key, "+kidCase+", "+hname, func(t *testing.T) {
				raw := attacker.SignWith(t, claimsFor(p.issuer, map[string]any{"actor": "mallory"}), h)
				tok, err := v.Verify(context.Background(), raw)
				if err == nil {
					t.Fatalf("token signed by the key its %s header names was accepted: %+v", hname, tok)
				}
				var te *oidc.TokenError
				if !errors.As(err, &te) {
					t.Fatalf("err = %v (%T), want a *TokenError", err, err)
				}
				switch te.Reason {
				case oidc.ReasonBadSignature, oidc.ReasonUnknownKey, oidc.ReasonBadAlgorithm, oidc.ReasonMalformed:
				default:
					t.Fatalf("reason = %s (%s), want a signature, key or algorithm refusal", te.Reason, te.Message)
				}
				assertNoTokenIn(t, raw, err)
			})
		}
		t.Cleanup(func() {
			if n := ownJKU.hits.Load() + ownX5U.hits.Load(); n != 0 {
				t.Errorf("attacker (%s): jku/x5u servers got %d requests, want 0", kidCase, n)
			}
		})
	}

	for hname, h := range headers {
		t.Run("real key, "+hname, func(t *testing.T) {
			tok := mustVerify(t, v, real.SignWith(t, claimsFor(p.issuer, nil), h))
			if tok.Person != "octocat" {
				t.Fatalf("person = %q", tok.Person)
			}
		})
	}
	if n := jku.hits.Load(); n != 0 {
		t.Errorf("jku server got %d requests, want 0", n)
	}
	if n := x5u.hits.Load(); n != 0 {
		t.Errorf("x5u server got %d requests, want 0", n)
	}
	// Only the issuer's own key set was ever downloaded (the unknown kids
	// may trigger one paced refresh, no more).
	if n := p.jwks.Hits(); n < 1 || n > 2 {
		t.Errorf("issuer key set downloads = %d, want 1 or 2", n)
	}
}

// TestThreatCritHeader: RFC 7515 says a token whose crit lists an
// extension the recipient does not understand must be refused. signoff
// implements no JWS extension of its own for CI tokens, so crit naming an
// unknown extension, a registered claim passed off as one, an extension
// the header does not carry, or crit that is not a list, is refused
// whoever signed it; and the attacker's key gets nothing through with any
// crit at all.
//
// signoff refuses every header that carries crit or b64, even forms RFC
// 7515 and RFC 7797 would let a recipient accept (an empty crit list,
// crit ["b64"], which the JOSE library implements), as it refuses them on
// SETs: no CI system or IdP sends them, and a verifier that understands
// no extension has nothing to gain from them.
func TestThreatCritHeader(t *testing.T) {
	real := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, real)
	attacker := testkeys.New(t, "k1", jose.ES256)

	refused := map[string]map[string]any{
		"unknown extension":        {"crit": []string{"urn:evil:skip-exp"}, "urn:evil:skip-exp": true},
		"claim named as extension": {"crit": []string{"exp"}},
		"listed but absent":        {"crit": []string{"x-approval"}},
		"not a list":               {"crit": "urn:evil:skip-exp"},
		"b64 and an unknown one":   {"crit": []string{"b64", "urn:evil:skip-exp"}, "b64": true},
	}
	// Forms the RFCs would let a recipient accept; signoff refuses them too.
	tolerated := map[string]map[string]any{
		"empty list":       {"crit": []string{}},
		"b64, true":        {"crit": []string{"b64"}, "b64": true},
		"b64, false":       {"crit": []string{"b64"}, "b64": false},
		"b64 without crit": {"b64": false},
	}
	mustRefuse := func(t *testing.T, raw string) {
		t.Helper()
		tok, err := v.Verify(context.Background(), raw)
		if err == nil {
			t.Fatalf("accepted: %+v", tok)
		}
		var te *oidc.TokenError
		if !errors.As(err, &te) {
			t.Fatalf("err = %v (%T), want a *TokenError", err, err)
		}
		t.Logf("%s: %s", te.Reason, te.Message)
		assertNoTokenIn(t, raw, err)
	}
	for name, h := range mergeMaps(refused, tolerated) {
		t.Run("real key, "+name, func(t *testing.T) {
			mustRefuse(t, real.SignWith(t, claimsFor(p.issuer, nil), h))
		})
	}
	for name, h := range mergeMaps(refused, tolerated) {
		t.Run("attacker key, "+name, func(t *testing.T) {
			mustRefuse(t, attacker.SignWith(t, claimsFor(p.issuer, map[string]any{"actor": "mallory"}), h))
		})
	}
	// The same key without crit is fine, so the refusals above are the
	// header's doing.
	mustVerify(t, v, real.Sign(t, claimsFor(p.issuer, nil)))
}

func mergeMaps(a, b map[string]map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestThreatLookalikeIssuers: iss must equal a configured issuer byte for
// byte. A trailing slash, a longer or shorter URL, or other letter case
// name another issuer, which is not trusted; none of them makes signoff
// contact anything, not even the real issuer.
func TestThreatLookalikeIssuers(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, k)
	iss := p.issuer // http://127.0.0.1:port
	lookalikes := map[string]string{
		"trailing slash":            iss + "/",
		"two trailing slashes":      iss + "//",
		"trusted issuer as prefix":  iss + "/evil",
		"trusted issuer + suffix":   iss + "0",
		"trusted + query":           iss + "?x=1",
		"trusted + fragment":        iss + "#x",
		"prefix of trusted issuer":  iss[:len(iss)-1],
		"upper-case scheme":         strings.Replace(iss, "http://", "HTTP://", 1),
		"upper-case everything":     strings.ToUpper(iss),
		"trailing space":            iss + " ",
		"leading space":             " " + iss,
		"trailing NUL":              iss + "\x00",
		"userinfo before host":      strings.Replace(iss, "http://", "http://evil@", 1),
		"trailing dot in host":      strings.Replace(iss, "127.0.0.1", "127.0.0.1.", 1),
		"trusted as another's path": "https://evil.example.com/" + iss,
	}
	for name, bad := range lookalikes {
		t.Run(name, func(t *testing.T) {
			raw := k.Sign(t, claimsFor(bad, nil))
			refuse(t, v, raw, oidc.ReasonUnknownIssuer)
		})
	}
	if d, j := p.discoveryHits.Load(), p.jwks.Hits(); d != 0 || j != 0 {
		t.Fatalf("look-alike issuers made signoff contact the issuer: discovery %d, jwks %d", d, j)
	}
	// The exact issuer still verifies: the refusals are about the iss.
	mustVerify(t, v, k.Sign(t, claimsFor(iss, nil)))
}

// TestThreatAudienceTypes: aud is a string or a list of strings (RFC
// 7519). An object that holds our audience as a member name or value, a
// number, a boolean, or a list nesting it are refused as malformed,
// before any network I/O. A list holding null gets as far as the
// signature check (the routing peek reads null as an empty string) and is
// refused there, as malformed too.
func TestThreatAudienceTypes(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, k)
	cases := map[string]any{
		"object, audience as member":  map[string]any{audience: true},
		"object, audience as value":   map[string]any{"aud": audience},
		"object, audience as list":    map[string]any{"0": audience},
		"number":                      42,
		"float":                       1.5,
		"boolean":                     true,
		"nested list":                 []any{[]any{audience}},
		"list with object":            []any{audience, map[string]any{"x": 1}},
		"list with number":            []any{audience, 7},
		"object inside list, ours in": []any{map[string]any{audience: audience}},
	}
	for name, aud := range cases {
		t.Run(name, func(t *testing.T) {
			c := claimsFor(p.issuer, nil)
			c["aud"] = aud // claimsFor would drop a nil inside, not here
			refuse(t, v, k.Sign(t, c), oidc.ReasonMalformed)
		})
	}
	if d, j := p.discoveryHits.Load(), p.jwks.Hits(); d != 0 || j != 0 {
		t.Fatalf("malformed aud made signoff contact the issuer: discovery %d, jwks %d", d, j)
	}
	c := claimsFor(p.issuer, nil)
	c["aud"] = []any{audience, nil}
	refuse(t, v, k.Sign(t, c), oidc.ReasonMalformed)
}

// TestThreatDuplicateClaimNames signs claims JSON that repeats a name. The
// JSON RFCs leave the meaning open; what matters is that every reader in
// signoff (the routing peek, go-oidc's checks, signoff's own claim checks
// and the claims policy matches) takes the same value, so a token cannot
// be routed or checked by one value and used with another.
//
// signoff's behaviour, pinned here: the LAST occurrence wins, everywhere.
// A duplicated iss or aud is therefore judged by its last value, a
// duplicated sub or person claim yields its last value as Subject, Person
// and Claims entry alike.
func TestThreatDuplicateClaimNames(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, k)
	exp := t0.Add(5 * time.Minute).Unix()
	past := t0.Add(-time.Hour).Unix()
	sign := func(t *testing.T, body string) string {
		t.Helper()
		var probe map[string]any // a duplicate-tolerant syntax check
		if err := json.Unmarshal([]byte(body), &probe); err != nil {
			t.Fatalf("test claims are not JSON: %v", err)
		}
		return testkeys.Sign(t, k.Priv, k.Alg, k.KID, []byte(body), map[string]any{"typ": "JWT"})
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	rest := func(omit ...string) string {
		fields := map[string]string{
			"iss": q(p.issuer), "aud": q(audience), "sub": q("repo:acme/api:ref:refs/heads/main"),
			"actor": q("octocat"), "iat": jsonInt(t0.Unix()), "exp": jsonInt(exp),
		}
		var parts []string
		for _, name := range []string{"iss", "aud", "sub", "actor", "iat", "exp"} {
			if !contains(omit, name) {
				parts = append(parts, q(name)+":"+fields[name])
			}
		}
		return strings.Join(parts, ",")
	}

	t.Run("two sub: the last is the subject and the claim", func(t *testing.T) {
		body := `{"sub":"repo:evil/x:ref:refs/heads/main",` + rest() + `}`
		tok := mustVerify(t, v, sign(t, body))
		if tok.Subject != "repo:acme/api:ref:refs/heads/main" || tok.Claims["sub"] != tok.Subject {
			t.Fatalf("subject %q, Claims[sub] %q: want both the last sub", tok.Subject, tok.Claims["sub"])
		}
		body = `{` + rest("sub") + `,"sub":"repo:acme/api:ref:refs/heads/main","sub":"repo:evil/x:ref:refs/heads/main"}`
		tok = mustVerify(t, v, sign(t, body))
		if tok.Subject != "repo:evil/x:ref:refs/heads/main" || tok.Claims["sub"] != tok.Subject {
			t.Fatalf("subject %q, Claims[sub] %q: want both the last sub", tok.Subject, tok.Claims["sub"])
		}
	})
	t.Run("two person claims: the last is the person", func(t *testing.T) {
		body := `{` + rest("actor") + `,"actor":"octocat","actor":"mallory"}`
		tok := mustVerify(t, v, sign(t, body))
		if tok.Person != "mallory" || tok.Claims["actor"] != "mallory" {
			t.Fatalf("person %q, Claims[actor] %q: want both the last actor", tok.Person, tok.Claims["actor"])
		}
	})
	t.Run("two repository claims: policy sees the last", func(t *testing.T) {
		body := `{"repository":"acme/api",` + rest() + `,"repository":"evil/api"}`
		tok := mustVerify(t, v, sign(t, body))
		if got := tok.Claims["repository"]; got != "evil/api" {
			t.Fatalf("Claims[repository] = %q, want the last value", got)
		}
	})
	t.Run("two aud, ours first: refused", func(t *testing.T) {
		body := `{` + rest() + `,"aud":"another-service"}`
		refuse(t, v, sign(t, body), oidc.ReasonWrongAudience, `"another-service"`)
	})
	t.Run("two aud, ours last: accepted", func(t *testing.T) {
		body := `{"aud":"another-service",` + rest() + `}`
		mustVerify(t, v, sign(t, body))
	})
	t.Run("two iss, trusted first: refused", func(t *testing.T) {
		body := `{` + rest() + `,"iss":"https://evil.example.com"}`
		refuse(t, v, sign(t, body), oidc.ReasonUnknownIssuer, "evil.example.com")
	})
	t.Run("two iss, trusted last: accepted", func(t *testing.T) {
		body := `{"iss":"https://evil.example.com",` + rest() + `}`
		tok := mustVerify(t, v, sign(t, body))
		if tok.Issuer != p.issuer || tok.Claims["iss"] != p.issuer {
			t.Fatalf("issuer %q, Claims[iss] %q", tok.Issuer, tok.Claims["iss"])
		}
	})
	t.Run("two exp, expired last: refused", func(t *testing.T) {
		body := `{` + rest() + `,"exp":` + jsonInt(past) + `}`
		refuse(t, v, sign(t, body), oidc.ReasonExpired)
	})
	t.Run("two exp, valid last: accepted with the last expiry", func(t *testing.T) {
		body := `{"exp":` + jsonInt(past) + `,` + rest() + `}`
		tok := mustVerify(t, v, sign(t, body))
		if tok.Expiry.Unix() != exp {
			t.Fatalf("expiry = %s, want the last exp", tok.Expiry)
		}
	})
	// Names that differ only in case are different claims to signoff,
	// but encoding/json struct decoding (go-oidc reads iss, aud, exp into
	// a struct) folds case. Both readers must agree before a token is
	// accepted, so a case twin cannot smuggle another value past either.
	for _, tc := range []struct{ name, twin, accepted string }{
		{"case twin of aud after ours: refused", `"AUD":"another-service"`, "whose AUD names another service after aud"},
		{"case twin of iss after ours: refused", `"ISS":"https://evil.example.com"`, "whose ISS names another issuer after iss"},
		{"case twin of exp after ours: refused", `"EXP":` + jsonInt(past), "whose EXP is past after a valid exp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{` + rest() + `,` + tc.twin + `}`
			_, err := v.Verify(context.Background(), sign(t, body))
			if err == nil {
				t.Fatal("accepted a token " + tc.accepted)
			}
			t.Logf("refused: %v", err)
		})
	}
	t.Run("case twin of sub is another claim", func(t *testing.T) {
		body := `{` + rest() + `,"SUB":"repo:evil/x:ref:refs/heads/main"}`
		tok := mustVerify(t, v, sign(t, body))
		if tok.Subject != "repo:acme/api:ref:refs/heads/main" || tok.Claims["sub"] != tok.Subject {
			t.Fatalf("subject %q, Claims[sub] %q: SUB must not be read as sub", tok.Subject, tok.Claims["sub"])
		}
	})
}

func jsonInt(n int64) string { return big.NewInt(n).String() }

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestThreatNULInClaims: a NUL byte in sub, the person claim or a claim
// policy matches must never be cut off (a C-style reader would see
// "acme/api" in "acme/api\x00/../evil"): signoff either refuses the token
// or keeps every byte, so that exact policy globs cannot match the
// truncated value.
func TestThreatNULInClaims(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, k)
	cases := map[string]string{
		"sub":        "repo:acme/api:ref:refs/heads/main\x00evil",
		"actor":      "octocat\x00mallory",
		"repository": "acme/api\x00/../evil",
	}
	for claim, value := range cases {
		t.Run(claim, func(t *testing.T) {
			raw := k.Sign(t, claimsFor(p.issuer, map[string]any{claim: value}))
			tok, err := v.Verify(context.Background(), raw)
			if err != nil {
				var te *oidc.TokenError
				if !errors.As(err, &te) {
					t.Fatalf("err = %v (%T), want a *TokenError", err, err)
				}
				t.Logf("refused: %s: %s", te.Reason, te.Message)
				return
			}
			if got := tok.Claims[claim]; got != value {
				t.Fatalf("Claims[%s] = %q, want %q byte for byte", claim, got, value)
			}
			switch claim {
			case "sub":
				if tok.Subject != value {
					t.Fatalf("Subject = %q, want %q", tok.Subject, value)
				}
			case "actor":
				if tok.Person != value {
					t.Fatalf("Person = %q, want %q", tok.Person, value)
				}
			}
		})
	}
	t.Run("NUL-only person claim", func(t *testing.T) {
		// "\x00" is not empty, so it is a person as far as the verifier
		// goes; it must at least not be confused with the absent claim.
		raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"actor": "\x00"}))
		tok, err := v.Verify(context.Background(), raw)
		if err == nil && tok.Person != "\x00" {
			t.Fatalf("Person = %q, want the NUL kept", tok.Person)
		}
	})
}

// signRawHeader signs claims under header exactly as written (member
// order, duplicates and escapes kept), RS256 with key.
func signRawHeader(t *testing.T, key *testkeys.Key, header string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key.Priv.(*rsa.PrivateKey), crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestAttackCritSpelledOtherwise: crit and b64 are refused however the
// header spells them to a JSON reader: with escaped letters in the member
// name, or twice with the last one harmless. The issuer's own key signs,
// so only the header decides.
func TestAttackCritSpelledOtherwise(t *testing.T) {
	real := testkeys.New(t, "k1", jose.RS256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, real)
	claims := claimsFor(p.issuer, nil)
	for name, h := range map[string]string{
		"escaped crit":             `{"alg":"RS256","kid":"k1","cr\u0069t":["urn:evil:skip-exp"],"urn:evil:skip-exp":true}`,
		"escaped b64":              `{"alg":"RS256","kid":"k1","\u0062\u0036\u0034":false}`,
		"crit twice, last null":    `{"alg":"RS256","kid":"k1","crit":["urn:evil:skip-exp"],"crit":null}`,
		"crit twice, last empty":   `{"alg":"RS256","kid":"k1","crit":["b64"],"b64":false,"crit":[]}`,
		"b64 twice, last true":     `{"alg":"RS256","kid":"k1","b64":false,"b64":true}`,
		"crit after a second alg":  `{"alg":"none","kid":"k1","alg":"RS256","crit":[]}`,
		"crit with a trailing key": `{"crit":["urn:x"],"alg":"RS256","kid":"k1"}`,
	} {
		t.Run(name, func(t *testing.T) {
			raw := signRawHeader(t, real, h, claims)
			tok, err := v.Verify(context.Background(), raw)
			var te *oidc.TokenError
			if err == nil || !errors.As(err, &te) {
				t.Fatalf("accepted or not a token error: %+v %v", tok, err)
			}
		})
	}
	// The same header without crit verifies: the refusals are crit's.
	mustVerify(t, v, signRawHeader(t, real, `{"alg":"RS256","kid":"k1"}`, claims))
}
