package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
)

const (
	setIssuer   = "https://transmitter.example.com"
	setAudience = "signoff-receiver"
	sessionRev  = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
)

// signSET signs claims as a SET: typ secevent+jwt unless header says
// otherwise (a nil value leaves the member out).
func signSET(t testing.TB, k *testkeys.Key, header, claims map[string]any) string {
	t.Helper()
	set := *k
	set.Typ = "secevent+jwt"
	return set.SignWith(t, claims, header)
}

// setClaims is a valid SET claim set at t0, with extra merged in (a nil
// value deletes a claim).
func setClaims(extra map[string]any) map[string]any {
	c := map[string]any{
		"iss":    setIssuer,
		"aud":    setAudience,
		"iat":    t0.Unix(),
		"jti":    "jti-1",
		"sub_id": map[string]any{"format": "email", "email": "alice@example.com"},
		"events": map[string]any{sessionRev: map[string]any{"event_timestamp": t0.Unix() - 5}},
	}
	return testkeys.Claims(c, extra)
}

func newSETVerifier(t *testing.T, clk *fakeClock, p *provider) *oidc.SETVerifier {
	t.Helper()
	v, err := oidc.NewSETVerifier(oidc.SETVerifierOptions{
		Issuer: setIssuer, JWKSURL: p.srv.URL + p.jwksPath, Audience: setAudience, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSETVerifyAccepts(t *testing.T) {
	clk := newClock()
	keys := []*testkeys.Key{testkeys.New(t, "es", jose.ES256), testkeys.New(t, "rs", jose.RS256), testkeys.New(t, "ps", jose.PS256), testkeys.New(t, "ed", jose.EdDSA)}
	p := newProvider(t, keys...)
	v := newSETVerifier(t, clk, p)
	for _, k := range keys {
		set, err := v.Verify(context.Background(), signSET(t, k, nil, setClaims(map[string]any{"txn": "txn-1"})))
		if err != nil {
			t.Fatalf("%s: %v", k.Alg, err)
		}
		if set.ID != "jti-1" || set.Issuer != setIssuer || set.TXN != "txn-1" || !set.IssuedAt.Equal(t0) ||
			!set.AcceptUntil.Equal(t0.Add(oidc.DefaultSETMaxAge+oidc.DefaultMaxSkew)) || len(set.Events) != 1 || set.SubID == nil {
			t.Errorf("%s: %+v", k.Alg, set)
		}
		var ev map[string]any
		if err := json.Unmarshal(set.Events[sessionRev], &ev); err != nil || ev["event_timestamp"] == nil {
			t.Errorf("%s: event %s: %v", k.Alg, set.Events[sessionRev], err)
		}
	}
	k := keys[0]
	for name, tc := range map[string]struct{ header, claims map[string]any }{
		"typ with application/":  {map[string]any{"typ": "application/secevent+jwt"}, nil},
		"typ in another case":    {map[string]any{"typ": "SecEvent+JWT"}, nil},
		"no typ":                 {map[string]any{"typ": nil}, nil},
		"aud a list":             {nil, map[string]any{"aud": []string{"other", setAudience}}},
		"iat within the skew":    {nil, map[string]any{"iat": t0.Add(oidc.DefaultMaxSkew).Unix()}},
		"iat at the maximum age": {nil, map[string]any{"iat": t0.Add(-oidc.DefaultSETMaxAge).Unix()}},
		"sub and exp ignored":    {nil, map[string]any{"sub": "x", "exp": t0.Add(-time.Hour).Unix()}},
		"no sub_id":              {nil, map[string]any{"sub_id": nil}},
	} {
		if _, err := v.Verify(context.Background(), signSET(t, k, tc.header, setClaims(tc.claims))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSETVerifyRefusals(t *testing.T) {
	clk := newClock()
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	v := newSETVerifier(t, clk, p)
	attacker := testkeys.New(t, "k1", jose.ES256)
	stranger := testkeys.New(t, "k2", jose.ES256)
	rsaKey := testkeys.New(t, "rsa", jose.RS256)

	valid := signSET(t, k, nil, setClaims(nil))
	parts := strings.Split(valid, ".")
	cases := []struct {
		name, raw string
		code      oidc.SETCode
		reason    oidc.SETReason
	}{
		{"empty", "", oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"not a JWT", "hello", oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"encrypted", "a.b.c.d.e", oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"too large", strings.Repeat("a", oidc.MaxSETBytes+1), oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"header not JSON", "bm90LWpzb24." + parts[1] + "." + parts[2], oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"alg none", unsigned(t, map[string]any{"alg": "none", "typ": "secevent+jwt"}, setClaims(nil)), oidc.SETErrInvalidKey, oidc.SETReasonBadAlgorithm},
		{"HS256 with the public key", hmacSigned(t, "k1", publicPEM(t, k), setClaims(nil)), oidc.SETErrInvalidKey, oidc.SETReasonBadAlgorithm},
		{"signed by another key with the same kid", signSET(t, attacker, nil, setClaims(nil)), oidc.SETErrInvalidKey, oidc.SETReasonBadSignature},
		{"unknown kid", signSET(t, stranger, nil, setClaims(nil)), oidc.SETErrInvalidKey, oidc.SETReasonUnknownKey},
		{"payload swapped", parts[0] + "." + b64(t, setClaims(map[string]any{"jti": "other"})) + "." + parts[2], oidc.SETErrInvalidKey, oidc.SETReasonBadSignature},
		{"unpublished RSA key", signSET(t, rsaKey, nil, setClaims(nil)), oidc.SETErrInvalidKey, oidc.SETReasonUnknownKey},
		{"typ JWT", signSET(t, k, map[string]any{"typ": "JWT"}, setClaims(nil)), oidc.SETErrInvalidRequest, oidc.SETReasonWrongType},
		{"crit", signSET(t, k, map[string]any{"crit": []string{"exp"}, "exp": 1}, setClaims(nil)), oidc.SETErrInvalidRequest, oidc.SETReasonUnsupportedHeader},
		// go-jose honours b64 (RFC 7797) even without crit.
		{"b64 without crit", b64(t, map[string]any{"alg": "ES256", "kid": "k1", "typ": "secevent+jwt", "b64": false}) + "." + parts[1] + "." + parts[2], oidc.SETErrInvalidRequest, oidc.SETReasonUnsupportedHeader},
		{"wrong iss", signSET(t, k, nil, setClaims(map[string]any{"iss": "https://evil.example.com"})), oidc.SETErrInvalidIssuer, oidc.SETReasonWrongIssuer},
		{"iss with a trailing slash", signSET(t, k, nil, setClaims(map[string]any{"iss": setIssuer + "/"})), oidc.SETErrInvalidIssuer, oidc.SETReasonWrongIssuer},
		{"no iss", signSET(t, k, nil, setClaims(map[string]any{"iss": nil})), oidc.SETErrInvalidIssuer, oidc.SETReasonWrongIssuer},
		{"wrong aud", signSET(t, k, nil, setClaims(map[string]any{"aud": "someone-else"})), oidc.SETErrInvalidAudience, oidc.SETReasonWrongAudience},
		{"no aud", signSET(t, k, nil, setClaims(map[string]any{"aud": nil})), oidc.SETErrInvalidAudience, oidc.SETReasonWrongAudience},
		{"aud an object", signSET(t, k, nil, setClaims(map[string]any{"aud": map[string]any{"x": setAudience}})), oidc.SETErrInvalidAudience, oidc.SETReasonWrongAudience},
		{"no iat", signSET(t, k, nil, setClaims(map[string]any{"iat": nil})), oidc.SETErrInvalidRequest, oidc.SETReasonMissingIAT},
		{"iat a string", signSET(t, k, nil, setClaims(map[string]any{"iat": "yesterday"})), oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"iat in the future", signSET(t, k, nil, setClaims(map[string]any{"iat": t0.Add(oidc.DefaultMaxSkew + time.Second).Unix()})), oidc.SETErrInvalidRequest, oidc.SETReasonIATInFuture},
		{"iat too old", signSET(t, k, nil, setClaims(map[string]any{"iat": t0.Add(-oidc.DefaultSETMaxAge - time.Second).Unix()})), oidc.SETErrInvalidRequest, oidc.SETReasonIATTooOld},
		{"no jti", signSET(t, k, nil, setClaims(map[string]any{"jti": nil})), oidc.SETErrInvalidRequest, oidc.SETReasonMissingJTI},
		{"empty jti", signSET(t, k, nil, setClaims(map[string]any{"jti": ""})), oidc.SETErrInvalidRequest, oidc.SETReasonMissingJTI},
		{"jti a number", signSET(t, k, nil, setClaims(map[string]any{"jti": 7})), oidc.SETErrInvalidRequest, oidc.SETReasonMissingJTI},
		{"jti too long", signSET(t, k, nil, setClaims(map[string]any{"jti": strings.Repeat("j", 257)})), oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"no events", signSET(t, k, nil, setClaims(map[string]any{"events": nil})), oidc.SETErrInvalidRequest, oidc.SETReasonNoEvents},
		{"empty events", signSET(t, k, nil, setClaims(map[string]any{"events": map[string]any{}})), oidc.SETErrInvalidRequest, oidc.SETReasonNoEvents},
		{"events a list", signSET(t, k, nil, setClaims(map[string]any{"events": []string{sessionRev}})), oidc.SETErrInvalidRequest, oidc.SETReasonNoEvents},
		{"an event not an object", signSET(t, k, nil, setClaims(map[string]any{"events": map[string]any{sessionRev: true}})), oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"sub_id a string", signSET(t, k, nil, setClaims(map[string]any{"sub_id": "alice"})), oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.raw)
			var serr *oidc.SETError
			if !errors.As(err, &serr) {
				t.Fatalf("err = %v (%T), want a *oidc.SETError", err, err)
			}
			if serr.Code != tc.code || serr.Reason != tc.reason || serr.Temporary {
				t.Errorf("= %s/%s (temporary %v): %s; want %s/%s", serr.Code, serr.Reason, serr.Temporary, serr.Message, tc.code, tc.reason)
			}
			if tc.raw != "" && len(tc.raw) > 20 && strings.Contains(serr.Message, tc.raw) {
				t.Error("the message repeats the SET")
			}
		})
	}
}

// TestSETKeysUnavailable: when the key set cannot be fetched the refusal
// is temporary (the transmitter should deliver again), and once it can,
// the SET verifies.
func TestSETKeysUnavailable(t *testing.T) {
	clk := newClock()
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	p.jwks.SetStatus(503)
	v := newSETVerifier(t, clk, p)
	raw := signSET(t, k, nil, setClaims(nil))
	_, err := v.Verify(context.Background(), raw)
	var serr *oidc.SETError
	if !errors.As(err, &serr) || !serr.Temporary || serr.Reason != oidc.SETReasonKeysUnavailable {
		t.Fatalf("keys down: %v (%+v)", err, serr)
	}
	p.jwks.SetStatus(0)
	clk.Advance(oidc.DefaultDiscoveryRetry)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("keys back: %v", err)
	}
}

func TestNewSETVerifierChecksOptions(t *testing.T) {
	for name, opts := range map[string]oidc.SETVerifierOptions{
		"no issuer":      {JWKSURL: "https://idp.example.com/keys", Audience: "a"},
		"no audience":    {Issuer: "i", JWKSURL: "https://idp.example.com/keys"},
		"no key set":     {Issuer: "i", Audience: "a"},
		"http key set":   {Issuer: "i", Audience: "a", JWKSURL: "http://idp.example.com/keys"},
		"skew too large": {Issuer: "i", Audience: "a", JWKSURL: "https://idp.example.com/keys", MaxSkew: time.Hour},
	} {
		if _, err := oidc.NewSETVerifier(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzSETVerify: whatever the body, Verify never panics and every refusal
// is a *SETError with a code and a message that does not repeat the body.
func FuzzSETVerify(f *testing.F) {
	clk := newClock()
	k := testkeys.New(f, "k1", jose.ES256)
	p := &provider{jwksPath: "/keys"}
	p.srv = httptest.NewServer(p)
	f.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	p.publish(k)
	v, err := oidc.NewSETVerifier(oidc.SETVerifierOptions{Issuer: setIssuer, JWKSURL: p.srv.URL + p.jwksPath, Audience: setAudience, Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signSET(f, k, nil, setClaims(nil)))
	f.Add(signSET(f, k, map[string]any{"typ": "JWT"}, setClaims(map[string]any{"events": map[string]any{"x": 1}})))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := v.Verify(context.Background(), raw)
		if err == nil {
			return
		}
		var serr *oidc.SETError
		if !errors.As(err, &serr) || serr.Code == "" || serr.Reason == "" || serr.Message == "" {
			t.Fatalf("err = %v (%T)", err, err)
		}
		if len(raw) > 32 && strings.Contains(serr.Message, raw) {
			t.Error("the message repeats the SET")
		}
	})
}
