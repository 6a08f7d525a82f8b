package oidc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
)

// tamper changes the byte at i of raw to another base64url character.
func tamper(raw string, i int) string {
	b := []byte(raw)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func wantCached(t *testing.T, v *oidc.RequesterVerifier, raw string, want bool) {
	t.Helper()
	if got := oidc.ServedFromCache(v, raw); got != want {
		t.Fatalf("served from cache = %v, want %v", got, want)
	}
}

func TestCachedTokenIsRefusedOnceExpired(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{MaxSkew: time.Minute}, k)
	raw := k.Sign(t, claimsFor(p.issuer, nil)) // exp t0+5m
	mustVerify(t, v, raw)
	wantCached(t, v, raw, true)

	clk.Advance(6 * time.Minute) // exactly exp + skew: still accepted
	mustVerify(t, v, raw)
	wantCached(t, v, raw, true)

	clk.Advance(time.Second)
	wantCached(t, v, raw, false)
	refuse(t, v, raw, oidc.ReasonExpired, "request a fresh token")
	if n := oidc.CachedTokens(v); n != 0 {
		t.Fatalf("%d tokens cached after expiry, want 0", n)
	}
}

// A fractional exp: the signature check reads whole seconds (go-oidc
// truncates), so a full verification refuses the token from the second
// exp falls in, plus the skew; the cache must not outlast that.
func TestCachedTokenWithFractionalExpiryEndsWithTheFullCheck(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{MaxSkew: time.Minute}, k)
	exp := float64(t0.Add(5*time.Minute).Unix()) + 0.9
	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"exp": exp}))
	mustVerify(t, v, raw)
	wantCached(t, v, raw, true)

	clk.Advance(6*time.Minute + 500*time.Millisecond) // past exp's second plus the skew
	uncached := newVerifier(t, clk, p.srv.Client(), oidc.VerifierOptions{MaxSkew: time.Minute, TokenCacheSize: -1}, trusted(p))
	if _, err := uncached.Verify(context.Background(), raw); err == nil {
		t.Fatal("a full verification accepts the token; the test no longer probes the window")
	}
	wantCached(t, v, raw, false)
	if _, err := v.Verify(context.Background(), raw); err == nil {
		t.Fatal("the cache accepted a token a full verification refuses")
	}
}

func TestCachedTokenIsRefusedWhenTheClockGoesBack(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{MaxSkew: time.Minute}, k)
	// nbf 30s ahead: accepted within the skew, cached.
	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"nbf": t0.Add(30 * time.Second).Unix()}))
	mustVerify(t, v, raw)
	wantCached(t, v, raw, true)

	clk.Advance(-time.Minute) // now nbf is 90s ahead
	wantCached(t, v, raw, false)
	refuse(t, v, raw, oidc.ReasonNotYetValid, "not valid before")
	clk.Advance(time.Minute)
	mustVerify(t, v, raw)
}

func TestCachedTokenEndsWithItsKeys(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{KeyMaxAge: 10 * time.Minute}, k)
	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"exp": t0.Add(time.Hour).Unix()}))
	mustVerify(t, v, raw)
	clk.Advance(10*time.Minute - time.Second)
	wantCached(t, v, raw, true)
	clk.Advance(time.Second)
	// The keys are due to be fetched again: so is the token's verification.
	wantCached(t, v, raw, false)
	p.publish(testkeys.New(t, "k2", jose.ES256))
	refuse(t, v, raw, oidc.ReasonUnknownKey)
}

// cacheThenRefetch has v cache a long-lived token signed by k1, then the
// issuer publish keys and a token naming k2 make signoff download the
// set again, well before KeyMaxAge. It returns v and the cached token.
func cacheThenRefetch(t *testing.T, publish func(k1, k2 *testkeys.Key) []*testkeys.Key) (*oidc.RequesterVerifier, string) {
	t.Helper()
	k1 := testkeys.New(t, "k1", jose.ES256)
	k2 := testkeys.New(t, "k2", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{KeyMaxAge: time.Hour, KeyRefreshInterval: time.Minute}, k1)
	long := map[string]any{"exp": t0.Add(time.Hour).Unix()}
	raw := k1.Sign(t, claimsFor(p.issuer, long))
	mustVerify(t, v, raw)
	wantCached(t, v, raw, true)

	p.publish(publish(k1, k2)...)
	clk.Advance(2 * time.Minute)
	mustVerify(t, v, k2.Sign(t, claimsFor(p.issuer, long)))
	wantJWKSHits(t, p, 2)
	return v, raw
}

// A key the issuer withdraws stops vouching for cached tokens as soon as
// signoff downloads the key set again, not only when the cached keys'
// age runs out: the cache never serves a token a full verification with
// the current keys refuses.
func TestCachedTokenEndsWhenItsKeyIsWithdrawn(t *testing.T) {
	v, raw := cacheThenRefetch(t, func(_, k2 *testkeys.Key) []*testkeys.Key { return []*testkeys.Key{k2} })
	wantCached(t, v, raw, false)
	refuse(t, v, raw, oidc.ReasonUnknownKey, `"k1"`)
}

// A download that still holds the verifying key costs a cached token one
// fresh verification, nothing more.
func TestCachedTokenSurvivesARefreshThatKeepsItsKey(t *testing.T) {
	v, raw := cacheThenRefetch(t, func(k1, k2 *testkeys.Key) []*testkeys.Key { return []*testkeys.Key{k1, k2} })
	wantCached(t, v, raw, false) // verified afresh once …
	mustVerify(t, v, raw)
	wantCached(t, v, raw, true) // … and cached again
}

func TestTamperedTokenIsNotServedFromCache(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{}, k)
	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"actor": "octocat"}))
	mustVerify(t, v, raw)

	dot1 := 0
	for raw[dot1] != '.' {
		dot1++
	}
	dot2 := dot1 + 1
	for raw[dot2] != '.' {
		dot2++
	}
	for name, i := range map[string]int{
		"header":    dot1 / 2,
		"claims":    (dot1 + dot2) / 2,
		"signature": (dot2 + len(raw)) / 2,
	} {
		t.Run(name, func(t *testing.T) {
			bad := tamper(raw, i)
			wantCached(t, v, bad, false)
			_, err := v.Verify(context.Background(), bad)
			var te *oidc.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("tampered token: err = %v, want a refusal", err)
			}
			assertNoTokenIn(t, bad, err)
			wantCached(t, v, bad, false)
		})
	}
	refuse(t, v, tamper(raw, (dot2+len(raw))/2), oidc.ReasonBadSignature)
	mustVerify(t, v, raw)
	if n := oidc.CachedTokens(v); n != 1 {
		t.Fatalf("%d tokens cached, want 1 (the untampered one)", n)
	}
}

func TestCachedTokenDoesNotCrossAudienceOrConfig(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{}, k)
	raw := k.Sign(t, claimsFor(p.issuer, nil))
	mustVerify(t, v, raw)
	wantCached(t, v, raw, true)

	// The same claims for another audience are another token.
	other := k.Sign(t, claimsFor(p.issuer, map[string]any{"aud": "another-service"}))
	refuse(t, v, other, oidc.ReasonWrongAudience)

	// A new configuration is a new verifier: what the old one accepted
	// counts for nothing.
	ti := trusted(p)
	ti.Audience = "signoff-elsewhere"
	v2 := newVerifier(t, clk, p.srv.Client(), oidc.VerifierOptions{}, ti)
	refuse(t, v2, raw, oidc.ReasonWrongAudience, `"signoff-elsewhere"`)
	wantCached(t, v2, raw, false)

	// Another configured issuer: its tokens are checked with its own keys.
	q := newProvider(t, testkeys.New(t, "k1", jose.ES256))
	qi := trusted(q)
	qi.Name = "other"
	v3 := newVerifier(t, clk, p.srv.Client(), oidc.VerifierOptions{}, trusted(p), qi)
	mustVerify(t, v3, raw)
	forged := k.Sign(t, claimsFor(q.issuer, nil)) // p's key, q's iss
	refuse(t, v3, forged, oidc.ReasonBadSignature)
	wantCached(t, v3, forged, false)
}

func TestRefusedTokenIsNotCached(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, clk, v := start(t, oidc.VerifierOptions{MaxSkew: time.Minute}, k)
	early := k.Sign(t, claimsFor(p.issuer, map[string]any{"nbf": t0.Add(2 * time.Minute).Unix()}))
	for range 2 {
		refuse(t, v, early, oidc.ReasonNotYetValid)
		wantCached(t, v, early, false)
	}
	for _, raw := range []string{
		k.Sign(t, claimsFor(p.issuer, map[string]any{"aud": "another-service"})),
		k.Sign(t, claimsFor(p.issuer, map[string]any{"actor": nil})),
		testkeys.New(t, "k1", jose.ES256).Sign(t, claimsFor(p.issuer, nil)),
	} {
		if _, err := v.Verify(context.Background(), raw); err == nil {
			t.Fatal("token accepted, want a refusal")
		}
		wantCached(t, v, raw, false)
	}
	if n := oidc.CachedTokens(v); n != 0 {
		t.Fatalf("%d tokens cached after refusals, want 0", n)
	}
	clk.Advance(time.Minute) // now within the skew of nbf: verified afresh
	mustVerify(t, v, early)
	wantCached(t, v, early, true)
}

func TestTokenCacheIsBounded(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: 8}, k)
	var last string
	for i := range 50 {
		last = k.Sign(t, claimsFor(p.issuer, map[string]any{"jti": fmt.Sprint(i)}))
		mustVerify(t, v, last)
		if n := oidc.CachedTokens(v); n > 8 {
			t.Fatalf("%d tokens cached, want at most 8", n)
		}
	}
	wantCached(t, v, last, true)

	p2, _, off := start(t, oidc.VerifierOptions{TokenCacheSize: -1}, k)
	raw := k.Sign(t, claimsFor(p2.issuer, nil))
	mustVerify(t, off, raw)
	mustVerify(t, off, raw)
	wantCached(t, off, raw, false)
	if n := oidc.CachedTokens(off); n != 0 {
		t.Fatalf("%d tokens cached with the cache off", n)
	}
}

func TestCachedTokenIsACopy(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, v := startTrusting(t, k, func(ti *oidc.TrustedIssuer) { ti.GroupsClaim = "groups" })
	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"groups": []string{"sre"}}))
	for range 3 {
		tok := mustVerify(t, v, raw)
		if tok.Claims["actor"] != "octocat" || len(tok.Groups) != 1 || tok.Groups[0] != "sre" {
			t.Fatalf("claims %v, groups %v", tok.Claims, tok.Groups)
		}
		tok.Claims["actor"] = "mallory"
		tok.Groups[0] = "admins"
	}
}

func TestTokenCacheConcurrentUse(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, _, v := start(t, oidc.VerifierOptions{TokenCacheSize: 4}, k)
	raws := make([]string, 12)
	for i := range raws {
		raws[i] = k.Sign(t, claimsFor(p.issuer, map[string]any{"actor": fmt.Sprint("person-", i)}))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 40 {
				i := (g + n) % len(raws)
				tok, err := v.Verify(context.Background(), raws[i])
				if err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if want := fmt.Sprint("person-", i); tok.Person != want {
					t.Errorf("person = %q, want %q", tok.Person, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
