package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
)

// TestReadUnverifiedAgreesWithVerify: for claim sets a token may carry,
// ReadUnverified reads exactly what Verify reads from the signed token
// (Expiry aside), or refuses with the same reason.
func TestReadUnverifiedAgreesWithVerify(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p := newProvider(t, k)
	ci := trusted(p)
	ci.GroupsClaim, ci.EmailClaim = "groups", "email"
	other := oidc.TrustedIssuer{Name: "ci-other", Issuer: p.issuer, Audience: "other", PersonClaim: "sub"}
	v := newVerifier(t, newClock(), p.srv.Client(), oidc.VerifierOptions{}, ci, other)

	cases := map[string]map[string]any{
		"plain":            nil,
		"groups and email": {"groups": []any{"sre", 7, "dev"}, "email": "o@example.com", "run_id": json.Number("123"), "ok": true},
		"routed by aud":    {"aud": "other"},
		"unknown issuer":   {"iss": "https://evil.example"},
		"no shared aud":    {"aud": "nobody"},
		"both audiences":   {"aud": []any{audience, "other"}},
		"no sub":           {"sub": nil},
		"no person":        {"actor": ""},
		"aud not a string": {"aud": 7},
	}
	for name, extra := range cases {
		claims := claimsFor(p.issuer, extra)
		want, verr := v.Verify(context.Background(), k.Sign(t, claims))
		payload, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		got, uerr := v.ReadUnverified(payload)
		var vte, ute *oidc.TokenError
		switch {
		case verr != nil || uerr != nil:
			if !errors.As(verr, &vte) || !errors.As(uerr, &ute) || vte.Reason != ute.Reason {
				t.Errorf("%s: Verify refused with %v, ReadUnverified with %v", name, verr, uerr)
			}
		default:
			if got.Expiry != (time.Time{}) {
				t.Errorf("%s: ReadUnverified set an expiry", name)
			}
			got.Expiry = want.Expiry
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: ReadUnverified read %+v, Verify %+v", name, got, want)
			}
		}
	}

	// Expired claims are read: nothing about time is checked.
	old := claimsFor(p.issuer, map[string]any{"exp": t0.Add(-time.Hour).Unix()})
	payload, _ := json.Marshal(old)
	if tok, err := v.ReadUnverified(payload); err != nil || tok.Person != "octocat" {
		t.Errorf("expired claims: %v, %v", tok, err)
	}
	for _, payload := range []string{"x", `{"sub":"x","aud":"signoff"}`, `[1]`} {
		_, err := v.ReadUnverified([]byte(payload))
		wantRefusal(t, err, "", oidc.ReasonMalformed)
	}
}
