package attest_test

// Attestations as a receiver sees them. Tokens signed by attest.Signer are
// read back with another JOSE implementation (github.com/golang-jwt/jwt/v5)
// and keys decoded from the published JWKS by hand, so what is checked is
// the JWT itself, not signoff's reading of it. Forged tokens are made with
// that library too.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"go/build"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/internal/attesttest"
	"github.com/signoff-dev/signoff/internal/testkeys"
)

// decided is the moment of the approval in these tests.
var decided = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const issuer = "https://signoff.example.com"

func newSigner(t testing.TB, key crypto.Signer, previous ...crypto.PublicKey) *attest.Signer {
	t.Helper()
	s, err := attest.NewSigner(attest.SignerOptions{Issuer: issuer + "/", Key: key, Previous: previous})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	return testkeys.EC(t, elliptic.P256())
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	return testkeys.RSA(t, 2048)
}

// approval is the claims approvals hands the signer for a deploy.
func approval() attest.Claims {
	return attest.Claims{
		Subject:   "req_abc",
		Audience:  "deploy.example.com",
		Action:    "deploy-prod",
		Params:    map[string]string{"service": "api", "version": "1.4.2"},
		Requester: attest.Requester{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat"},
		Approvers: []attest.Approver{
			{Issuer: "https://login.example.com", Subject: "u-alice", Email: "alice@example.com", Platform: "slack"},
			{Issuer: "https://login.example.com", Subject: "u-bob", Platform: "teams"},
		},
		DecidedAt: decided.Add(400 * time.Millisecond),
	}
}

func sign(t testing.TB, s *attest.Signer, c attest.Claims) attest.Signed {
	t.Helper()
	signed, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// thumbprint is RFC 7638's, computed here from the JWK members.
func thumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	var canonical string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		x, y := make([]byte, 32), make([]byte, 32)
		k.X.FillBytes(x)
		k.Y.FillBytes(y)
		canonical = `{"crv":"P-256","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`
	case *rsa.PublicKey:
		canonical = `{"e":"` + b64(big.NewInt(int64(k.E)).Bytes()) + `","kty":"RSA","n":"` + b64(k.N.Bytes()) + `"}`
	default:
		t.Fatalf("key %T", pub)
	}
	sum := sha256.Sum256([]byte(canonical))
	return b64(sum[:])
}

func independentParse(t testing.TB, tok string, jwks []byte, aud string, now time.Time) (*jwt.Token, error) {
	t.Helper()
	return attesttest.Parse(t, tok, jwks, issuer, aud, now)
}

func jwksKeys(t testing.TB, doc []byte) map[string]crypto.PublicKey {
	t.Helper()
	return attesttest.Keys(t, doc)
}

// An attestation, ES256 or RS256, is a JWT that a stock library verifies
// with the published keys alone, carrying exactly the claims of the
// contract with the values approved.
func TestAttestationVerifiesWithAnIndependentLibrary(t *testing.T) {
	for _, tc := range []struct {
		name, alg string
		key       crypto.Signer
	}{
		{"ES256", "ES256", ecKey(t)},
		{"RS256", "RS256", rsaKey(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSigner(t, tc.key)
			signed := sign(t, s, approval())
			if s.Issuer() != issuer || s.KeyID() != thumbprint(t, tc.key.Public()) || signed.KeyID != s.KeyID() {
				t.Errorf("issuer %q, kid %q (signed %q); want %q and the RFC 7638 thumbprint %q", s.Issuer(), s.KeyID(), signed.KeyID, issuer, thumbprint(t, tc.key.Public()))
			}
			tok, err := independentParse(t, signed.Token, s.JWKS(), "deploy.example.com", decided.Add(time.Minute))
			if err != nil {
				t.Fatalf("golang-jwt refuses the attestation: %v", err)
			}
			if tok.Method.Alg() != tc.alg || tok.Header["typ"] != "approval+jwt" || tok.Header["kid"] != s.KeyID() {
				t.Errorf("header %v; want alg %s, typ approval+jwt, kid %s", tok.Header, tc.alg, s.KeyID())
			}
			claims := tok.Claims.(jwt.MapClaims)
			if got := slices.Sorted(maps.Keys(claims)); !slices.Equal(got, []string{
				"action", "approvers", "aud", "decided_at", "exp", "iat", "iss", "jti", "nbf", "params", "requester", "sub",
			}) {
				t.Errorf("claims %v", got)
			}
			want := map[string]any{
				"iss": issuer, "sub": "req_abc", "aud": "deploy.example.com", "action": "deploy-prod",
				"iat": float64(decided.Unix()), "nbf": float64(decided.Unix()), "decided_at": float64(decided.Unix()),
				"exp":    float64(decided.Add(attest.DefaultTTL).Unix()),
				"params": map[string]any{"service": "api", "version": "1.4.2"},
				"requester": map[string]any{
					"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:acme/api:ref:refs/heads/main", "person": "octocat",
				},
				"approvers": []any{
					map[string]any{"issuer": "https://login.example.com", "subject": "u-alice", "email": "alice@example.com", "platform": "slack"},
					map[string]any{"issuer": "https://login.example.com", "subject": "u-bob", "platform": "teams"},
				},
			}
			for k, v := range want {
				if g, _ := json.Marshal(claims[k]); string(g) != mustJSON(t, v) {
					t.Errorf("claim %s = %s, want %s", k, g, mustJSON(t, v))
				}
			}
			if jti, _ := claims["jti"].(string); len(jti) < 20 || jti != signed.ID {
				t.Errorf("jti %q (signed.ID %q): want a random id of at least 128 bits", jti, signed.ID)
			}
			if !signed.Expiry.Equal(decided.Add(attest.DefaultTTL)) {
				t.Errorf("Signed.Expiry %s", signed.Expiry)
			}
			// Two approvals never share a jti.
			if again := sign(t, s, approval()); again.ID == signed.ID {
				t.Error("two attestations with the same jti")
			}
			// The stock library enforces the lifetime and audience too.
			if _, err := independentParse(t, signed.Token, s.JWKS(), "deploy.example.com", decided.Add(attest.DefaultTTL+time.Second)); !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("16 minutes later golang-jwt says %v, want expired", err)
			}
			if _, err := independentParse(t, signed.Token, s.JWKS(), "other.example.com", decided.Add(time.Minute)); !errors.Is(err, jwt.ErrTokenInvalidAudience) {
				t.Errorf("for another audience golang-jwt says %v, want invalid audience", err)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// No params and no requester person: params is still an object, person is
// left out.
func TestAttestationWithoutParams(t *testing.T) {
	s := newSigner(t, ecKey(t))
	c := approval()
	c.Params, c.Requester.Person = nil, ""
	tok, err := independentParse(t, sign(t, s, c).Token, s.JWKS(), "deploy.example.com", decided)
	if err != nil {
		t.Fatal(err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	if p, ok := claims["params"].(map[string]any); !ok || len(p) != 0 {
		t.Errorf("params %#v, want {}", claims["params"])
	}
	if _, ok := claims["requester"].(map[string]any)["person"]; ok {
		t.Errorf("requester %v: an unknown person is left out", claims["requester"])
	}
}

func keySet(t testing.TB, s *attest.Signer) *attest.KeySet {
	t.Helper()
	ks, err := attest.ParseKeySet(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

var want = attest.Expected{Issuer: issuer, Audience: "deploy.example.com", Action: "deploy-prod", Params: map[string]string{"service": "api", "version": "1.4.2"}}

func at(d time.Duration) attest.VerifyOptions {
	return attest.VerifyOptions{Now: func() time.Time { return decided.Add(d) }, Leeway: attest.DefaultLeeway}
}

func TestVerifyAcceptsAndReturnsTheClaims(t *testing.T) {
	s := newSigner(t, ecKey(t))
	signed := sign(t, s, approval())
	c, err := attest.Verify(signed.Token+"\n", keySet(t, s), want, at(14*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	exp := approval()
	exp.Issuer, exp.ID = issuer, signed.ID
	exp.IssuedAt, exp.NotBefore, exp.DecidedAt, exp.Expiry = decided, decided, decided, decided.Add(15*time.Minute)
	if mustJSON(t, c) != mustJSON(t, exp) || !c.Expiry.Equal(exp.Expiry) {
		t.Errorf("claims\n%s\nwant\n%s", mustJSON(t, c), mustJSON(t, exp))
	}
	// Pins are optional beyond the audience.
	if _, err := attest.Verify(signed.Token, keySet(t, s), attest.Expected{Audience: "deploy.example.com"}, at(time.Minute)); err != nil {
		t.Errorf("audience only: %v", err)
	}
	if _, err := attest.Verify(signed.Token, keySet(t, s), attest.Expected{}, at(time.Minute)); err == nil {
		t.Error("Verify without an expected audience accepted the attestation")
	}
}

// forge signs claims with key under the given header members, with
// golang-jwt.
func forge(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodClaims are valid claims for want, as a map to alter.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": issuer, "sub": "req_abc", "aud": "deploy.example.com",
		"iat": decided.Unix(), "nbf": decided.Unix(), "exp": decided.Add(15 * time.Minute).Unix(), "jti": "j-1",
		"action": "deploy-prod", "params": map[string]string{"service": "api", "version": "1.4.2"},
		"requester":  map[string]string{"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:acme/api:ref:refs/heads/main"},
		"approvers":  []map[string]string{{"issuer": "https://login.example.com", "subject": "u-alice", "platform": "slack"}},
		"decided_at": decided.Unix(),
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := maps.Clone(c)
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func publicPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// What an attacker tries (the JWT part of the attacker's checklist): every one is refused, and
// the refusal names the check that failed.
func TestVerifyRefusals(t *testing.T) {
	key := ecKey(t)
	s := newSigner(t, key)
	ks := keySet(t, s)
	kid := s.KeyID()
	hdr := map[string]any{"kid": kid, "typ": "approval+jwt"}
	good := forge(t, jwt.SigningMethodES256, key, hdr, goodClaims())
	if _, err := attest.Verify(good, ks, want, at(time.Minute)); err != nil {
		t.Fatalf("the forger's control token (the real key) is refused: %v", err)
	}
	real := sign(t, s, approval()).Token
	parts := strings.Split(real, ".")

	// Tampered: the payload re-encoded with other params, the signature kept.
	var payload map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &payload)
	payload["params"] = map[string]string{"service": "billing", "version": "1.4.2"}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(mustJSON(t, payload))) + "." + parts[2]
	// The header changed to name no typ, the signature kept.
	var header map[string]any
	raw, _ = base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(raw, &header)
	header["alg"] = "RS256"
	algSwapped := base64.RawURLEncoding.EncodeToString([]byte(mustJSON(t, header))) + "." + parts[1] + "." + parts[2]

	other := ecKey(t)
	rsaOther := rsaKey(t)
	pubPEM := publicPEM(t, key.Public())
	noneTok := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, goodClaims())

	for _, tc := range []struct {
		name  string
		token string
		want  attest.Expected
		opts  attest.VerifyOptions
		check attest.Check
	}{
		{"tampered payload", tampered, want, at(time.Minute), attest.CheckSignature},
		{"header alg changed, signature kept", algSwapped, want, at(time.Minute), attest.CheckAlgorithm},
		{"signed by another key under the real kid", forge(t, jwt.SigningMethodES256, other, hdr, goodClaims()), want, at(time.Minute), attest.CheckSignature},
		{"RS256 by another key under the real kid", forge(t, jwt.SigningMethodRS256, rsaOther, hdr, goodClaims()), want, at(time.Minute), attest.CheckAlgorithm},
		{"alg none", noneTok, want, at(time.Minute), attest.CheckAlgorithm},
		{"alg none, signature stripped from a real one", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"approval+jwt","kid":"`+kid+`"}`)) + "." + parts[1] + ".", want, at(time.Minute), attest.CheckAlgorithm},
		{"HS256 with the public key PEM as secret", forge(t, jwt.SigningMethodHS256, pubPEM, hdr, goodClaims()), want, at(time.Minute), attest.CheckAlgorithm},
		{"HS256 with the JWKS as secret", forge(t, jwt.SigningMethodHS256, s.JWKS(), hdr, goodClaims()), want, at(time.Minute), attest.CheckAlgorithm},
		{"ES384", forge(t, jwt.SigningMethodES384, mustP384(t), hdr, goodClaims()), want, at(time.Minute), attest.CheckAlgorithm},
		{"an unknown kid", forge(t, jwt.SigningMethodES256, other, map[string]any{"kid": "attacker", "typ": "approval+jwt"}, goodClaims()), want, at(time.Minute), attest.CheckUnknownKey},
		{"no kid", forge(t, jwt.SigningMethodES256, key, map[string]any{"typ": "approval+jwt"}, goodClaims()), want, at(time.Minute), attest.CheckUnknownKey},
		{"the attacker's key embedded as jwk", forge(t, jwt.SigningMethodES256, other, map[string]any{"kid": kid, "typ": "approval+jwt", "jwk": jwkOf(t, other)}, goodClaims()), want, at(time.Minute), attest.CheckSignature},
		{"jku pointing elsewhere", forge(t, jwt.SigningMethodES256, other, map[string]any{"kid": kid, "typ": "approval+jwt", "jku": "https://evil.example/jwks"}, goodClaims()), want, at(time.Minute), attest.CheckSignature},
		{"typ JWT (another kind of token from the same key)", forge(t, jwt.SigningMethodES256, key, map[string]any{"kid": kid, "typ": "JWT"}, goodClaims()), want, at(time.Minute), attest.CheckType},
		{"no typ", forge(t, jwt.SigningMethodES256, key, map[string]any{"kid": kid, "typ": nil}, goodClaims()), want, at(time.Minute), attest.CheckType},
		{"crit", forge(t, jwt.SigningMethodES256, key, map[string]any{"kid": kid, "typ": "approval+jwt", "crit": []string{"exp"}}, goodClaims()), want, at(time.Minute), attest.CheckType},
		{"wrong audience", real, attest.Expected{Issuer: issuer, Audience: "payments.example.com"}, at(time.Minute), attest.CheckAudience},
		{"audience as a list of two", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "aud", []string{"deploy.example.com", "other"})), want, at(time.Minute), attest.CheckMalformed},
		{"wrong issuer", real, attest.Expected{Issuer: "https://signoff.example.org", Audience: "deploy.example.com"}, at(time.Minute), attest.CheckIssuer},
		{"issuer as a prefix", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "iss", issuer+".evil")), want, at(time.Minute), attest.CheckIssuer},
		{"expired", real, want, at(15*time.Minute + attest.DefaultLeeway), attest.CheckExpired},
		{"expired, without leeway", real, want, attest.VerifyOptions{Now: func() time.Time { return decided.Add(15 * time.Minute) }}, attest.CheckExpired},
		{"not yet valid", real, want, at(-2 * time.Minute), attest.CheckNotYetValid},
		{"nbf ahead", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "nbf", decided.Add(10*time.Minute).Unix())), want, at(time.Minute), attest.CheckNotYetValid},
		{"iat ahead", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "iat", decided.Add(10*time.Minute).Unix())), want, at(time.Minute), attest.CheckNotYetValid},
		{"no exp", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "exp", nil)), want, at(time.Minute), attest.CheckMalformed},
		{"exp as a string", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "exp", "tomorrow")), want, at(time.Minute), attest.CheckMalformed},
		{"no params claim", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "params", nil)), want, at(time.Minute), attest.CheckMalformed},
		{"another action", real, attest.Expected{Issuer: issuer, Audience: "deploy.example.com", Action: "deploy-staging"}, at(time.Minute), attest.CheckAction},
		{"a pinned param with another value", real, attest.Expected{Issuer: issuer, Audience: "deploy.example.com", Params: map[string]string{"service": "billing"}}, at(time.Minute), attest.CheckParams},
		{"a pinned param not approved", real, attest.Expected{Issuer: issuer, Audience: "deploy.example.com", Params: map[string]string{"region": "eu"}}, at(time.Minute), attest.CheckParams},
		{"exact params, one more approved", real, attest.Expected{Issuer: issuer, Audience: "deploy.example.com", Params: map[string]string{"service": "api"}, ExactParams: true}, at(time.Minute), attest.CheckParams},
		{"param value with a trailing newline", forge(t, jwt.SigningMethodES256, key, hdr, with(goodClaims(), "params", map[string]string{"service": "api\n", "version": "1.4.2"})), want, at(time.Minute), attest.CheckParams},
		{"not a JWT", "hello", want, at(time.Minute), attest.CheckMalformed},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, want, at(time.Minute), attest.CheckMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := attest.Verify(tc.token, ks, tc.want, tc.opts)
			var ve *attest.VerifyError
			if !errors.As(err, &ve) || ve.Check != tc.check {
				t.Fatalf("Verify: %v, %v; want a refusal of check %s", c, err, tc.check)
			}
			if c != nil {
				t.Error("claims returned with a refusal")
			}
			if !strings.HasPrefix(err.Error(), string(tc.check)+": ") {
				t.Errorf("message %q does not begin with the check", err)
			}
		})
	}
}

func mustP384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	return testkeys.EC(t, elliptic.P384())
}

func jwkOf(t testing.TB, k *ecdsa.PrivateKey) map[string]string {
	t.Helper()
	x, y := make([]byte, 32), make([]byte, 32)
	k.X.FillBytes(x)
	k.Y.FillBytes(y)
	return map[string]string{"kty": "EC", "crv": "P-256", "x": base64.RawURLEncoding.EncodeToString(x), "y": base64.RawURLEncoding.EncodeToString(y)}
}

// Rotation: the new key signs, the old one is still published, so
// attestations signed before the switch verify until they expire; once the
// retired key is dropped they no longer do.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := ecKey(t), rsaKey(t)
	before := newSigner(t, oldKey)
	early := sign(t, before, approval())

	after := newSigner(t, newKey, oldKey.Public())
	c := approval()
	c.DecidedAt = decided.Add(5 * time.Minute)
	late := sign(t, after, c)

	if late.KeyID == early.KeyID || late.KeyID != thumbprint(t, newKey.Public()) || after.KeyID() != late.KeyID {
		t.Fatalf("after rotation the kid is %q (before %q); want the new key's %q", late.KeyID, early.KeyID, thumbprint(t, newKey.Public()))
	}
	published := jwksKeys(t, after.JWKS())
	if len(published) != 2 || published[early.KeyID] == nil || published[late.KeyID] == nil {
		t.Fatalf("JWKS after rotation publishes %v; want the new and the retired key", slices.Collect(maps.Keys(published)))
	}
	if ids := keySet(t, after).KeyIDs(); ids[0] != late.KeyID {
		t.Errorf("key order %v: the signing key comes first", ids)
	}
	if got := after.Keys().Algorithms(); !slices.Equal(got, []string{"RS256", "ES256"}) {
		t.Errorf("algorithms %v", got)
	}
	for _, tok := range []attest.Signed{early, late} {
		if _, err := independentParse(t, tok.Token, after.JWKS(), "deploy.example.com", decided.Add(10*time.Minute)); err != nil {
			t.Errorf("golang-jwt with the rotated JWKS refuses %s's attestation: %v", tok.KeyID, err)
		}
		if _, err := attest.Verify(tok.Token, keySet(t, after), want, at(10*time.Minute)); err != nil {
			t.Errorf("Verify with the rotated JWKS refuses %s's attestation: %v", tok.KeyID, err)
		}
	}
	// The early attestation ends at its own exp, the late one later.
	var ve *attest.VerifyError
	if _, err := attest.Verify(early.Token, keySet(t, after), want, at(16*time.Minute+time.Second)); !errors.As(err, &ve) || ve.Check != attest.CheckExpired {
		t.Errorf("the old key's attestation after its exp: %v, want expired", err)
	}
	if _, err := attest.Verify(late.Token, keySet(t, after), want, at(16*time.Minute+time.Second)); err != nil {
		t.Errorf("the new key's attestation within its lifetime: %v", err)
	}
	// Once the retired key is no longer published, its attestations name
	// an unknown key.
	dropped := newSigner(t, newKey)
	if _, err := attest.Verify(early.Token, keySet(t, dropped), want, at(time.Minute)); !errors.As(err, &ve) || ve.Check != attest.CheckUnknownKey {
		t.Errorf("old attestation against a JWKS without its key: %v, want unknown_key", err)
	}
	// A key listed as both current and previous is published once.
	if n := len(jwksKeys(t, newSigner(t, newKey, newKey.Public(), oldKey.Public()).JWKS())); n != 2 {
		t.Errorf("%d keys published for a repeated key", n)
	}
}

// The JWKS never carries a private parameter, whatever the keys, also
// when a private key is handed over as a previous key or sits in a JWKS
// read back.
func TestJWKSHasNoPrivateParameters(t *testing.T) {
	ec, rs := ecKey(t), rsaKey(t)
	for _, s := range []*attest.Signer{newSigner(t, ec), newSigner(t, rs, ec.Public()), newSigner(t, ec, rs)} {
		doc := s.JWKS()
		checkPublicOnly(t, doc)
		for _, secret := range [][]byte{ec.D.Bytes(), rs.D.Bytes(), rs.Primes[0].Bytes()} {
			if bytes.Contains(doc, []byte(base64.RawURLEncoding.EncodeToString(secret))) {
				t.Errorf("a private value is in the JWKS %s", doc)
			}
		}
	}
	// A JWKS holding a private key (a publisher's mistake) is read as its
	// public half, and written back without the private parameters.
	leaked := `{"keys":[` + privateJWK(t, ec) + `]}`
	ks, err := attest.ParseKeySet([]byte(leaked))
	if err != nil {
		t.Fatal(err)
	}
	out, err := ks.JSON()
	if err != nil {
		t.Fatal(err)
	}
	checkPublicOnly(t, out)
}

func checkPublicOnly(t *testing.T, doc []byte) {
	t.Helper()
	attesttest.CheckPublicOnly(t, doc)
}

func privateJWK(t testing.TB, k *ecdsa.PrivateKey) string {
	t.Helper()
	j := jwkOf(t, k)
	d := make([]byte, 32)
	k.D.FillBytes(d)
	j["d"], j["kid"], j["use"], j["alg"] = base64.RawURLEncoding.EncodeToString(d), "leaked", "sig", "ES256"
	return mustJSON(t, j)
}

func TestParseKeySetKeepsOnlySigningKeys(t *testing.T) {
	ec := ecKey(t)
	good := jwkOf(t, ec)
	good["kid"] = "k1"
	enc := maps.Clone(good)
	enc["kid"], enc["use"] = "k2", "enc"
	wrongAlg := maps.Clone(good)
	wrongAlg["kid"], wrongAlg["alg"] = "k3", "RS256"
	noKid := maps.Clone(good)
	delete(noKid, "kid")
	oct := `{"kty":"oct","kid":"k4","k":"c2VjcmV0"}`
	doc := `{"keys":[` + mustJSON(t, good) + "," + mustJSON(t, enc) + "," + mustJSON(t, wrongAlg) + "," + mustJSON(t, noKid) + "," + oct + `]}`
	ks, err := attest.ParseKeySet([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.KeyIDs(); !slices.Equal(got, []string{"k1"}) {
		t.Errorf("kept %v, want [k1]", got)
	}
	for _, bad := range []string{`{"keys":[]}`, `{"keys":[` + oct + `]}`, `[]`, `{"keys":[` + mustJSON(t, good) + "," + mustJSON(t, good) + `]}`} {
		if _, err := attest.ParseKeySet([]byte(bad)); err == nil {
			t.Errorf("ParseKeySet(%s) accepted", bad)
		}
	}
}

func TestKeys(t *testing.T) {
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	ec, rs := ecKey(t), rsaKey(t)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PRIVATE KEY", der)
	}
	sec1, _ := x509.MarshalECPrivateKey(ec)
	for name, data := range map[string][]byte{
		"PKCS#8 EC": pkcs8(ec), "PKCS#8 RSA": pkcs8(rs), "SEC 1": pemOf("EC PRIVATE KEY", sec1),
		"PKCS#1": pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rs)),
	} {
		if _, err := attest.ParsePrivateKeyPEM(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := attest.ParsePublicKeyPEM(data); err != nil {
			t.Errorf("%s as a public key: %v", name, err)
		}
	}
	if pub, err := attest.ParsePublicKeyPEM(publicPEM(t, ec.Public())); err != nil || !ec.PublicKey.Equal(pub) {
		t.Errorf("PUBLIC KEY: %v", err)
	}
	if _, err := attest.ParsePrivateKeyPEM(publicPEM(t, ec.Public())); err == nil {
		t.Error("a public key accepted as the signing key")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for name, data := range map[string][]byte{
		"P-384": pkcs8(mustP384(t)), "RSA 1024": pkcs8(small), "Ed25519": pkcs8(edPriv), "garbage": []byte("not a key"),
		"certificate": pemOf("CERTIFICATE", []byte{1, 2, 3}),
	} {
		if _, err := attest.ParsePrivateKeyPEM(data); err == nil {
			t.Errorf("%s accepted as a signing key", name)
		}
		if _, err := attest.ParsePublicKeyPEM(data); err == nil {
			t.Errorf("%s accepted as a published key", name)
		}
	}
	for _, useRSA := range []bool{false, true} {
		k, err := attest.GenerateKey(useRSA)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := attest.WritePrivateKeyPEM(&buf, k); err != nil {
			t.Fatal(err)
		}
		back, err := attest.ParsePrivateKeyPEM(buf.Bytes())
		if err != nil {
			t.Fatalf("a generated key does not read back: %v", err)
		}
		alg, _ := attest.Algorithm(back.Public())
		if (alg == "RS256") != useRSA {
			t.Errorf("GenerateKey(rsa=%v) made an %s key", useRSA, alg)
		}
	}
}

func TestNewSignerRefuses(t *testing.T) {
	key := ecKey(t)
	for name, o := range map[string]attest.SignerOptions{
		"no key":              {Issuer: issuer},
		"no issuer":           {Key: key},
		"issuer with a query": {Issuer: issuer + "?x=1", Key: key},
		"relative issuer":     {Issuer: "signoff.example.com", Key: key},
		"P-384 key":           {Issuer: issuer, Key: mustP384(t)},
		"ttl beyond a day":    {Issuer: issuer, Key: key, TTL: 25 * time.Hour},
		"negative ttl":        {Issuer: issuer, Key: key, TTL: -time.Minute},
	} {
		if _, err := attest.NewSigner(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s := newSigner(t, key)
	for name, c := range map[string]func(*attest.Claims){
		"no subject":  func(c *attest.Claims) { c.Subject = "" },
		"no audience": func(c *attest.Claims) { c.Audience = "" },
		"no action":   func(c *attest.Claims) { c.Action = "" },
		"no decision": func(c *attest.Claims) { c.DecidedAt = time.Time{} },
	} {
		cl := approval()
		c(&cl)
		if _, err := s.Sign(cl); err == nil {
			t.Errorf("Sign with %s: accepted", name)
		}
	}
}

// The discovery document: what a cloud's token service reads.
func TestDiscoveryDocument(t *testing.T) {
	s := newSigner(t, ecKey(t), rsaKey(t).Public())
	var d map[string]any
	if err := json.Unmarshal(s.Discovery(), &d); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              issuer + "/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []any{"ES256", "RS256"},
		"response_types_supported":              []any{"id_token"},
		"subject_types_supported":               []any{"public"},
	} {
		if mustJSON(t, d[k]) != mustJSON(t, v) {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
}

// FetchKeySet reads the discovery document, then the key set it names.
func TestFetchKeySet(t *testing.T) {
	s := newSigner(t, ecKey(t))
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(s.JWKS()) })
	ks, d, err := attest.FetchKeySet(t.Context(), srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if d.Issuer != issuer || !slices.Equal(ks.KeyIDs(), []string{s.KeyID()}) {
		t.Errorf("discovery %+v, keys %v", d, ks.KeyIDs())
	}
	if _, _, err := attest.FetchKeySet(t.Context(), srv.Client(), srv.URL+"/nothing-here"); err == nil {
		t.Error("a server without a discovery document: no error")
	}
}

// The package stands alone: a receiver imports it without the server.
func TestAttestImportsNothingOfSignoff(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "github.com/signoff-dev/") {
			t.Errorf("attest imports %s", imp)
		}
	}
}
