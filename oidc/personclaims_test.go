package oidc_test

import (
	"fmt"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
)

// TestLoginTokenPersonClaimWithTooManyValuesIsRefused: a signoff login
// token's person claims (idp.person_claims) name the admin for the
// "nobody ends their own break-glass review" check. A list longer than
// signoff reads is refused, not cut short, so a name past the cut cannot
// hide; at the limit every value is read.
func TestLoginTokenPersonClaimWithTooManyValuesIsRefused(t *testing.T) {
	k := testkeys.New(t, "k1", jose.ES256)
	p, v := startTrusting(t, k, func(ti *oidc.TrustedIssuer) {
		ti.Name, ti.PersonClaim, ti.Login, ti.HandleClaims = "idp:login", "sub", true, []string{"github_login"}
	})
	handles := func(n int) []any {
		out := make([]any, 0, n)
		for i := 1; i < n; i++ {
			out = append(out, fmt.Sprintf("alt-%d", i))
		}
		return append(out, "octocat")
	}

	tok := mustVerify(t, v, k.Sign(t, claimsFor(p.issuer, map[string]any{"github_login": handles(32)})))
	if len(tok.Handles) != 32 || !slices.Contains(tok.Handles, "octocat") {
		t.Fatalf("handles at the limit = %v", tok.Handles)
	}

	raw := k.Sign(t, claimsFor(p.issuer, map[string]any{"github_login": handles(33)}))
	refuse(t, v, raw, oidc.ReasonMalformed, `"github_login"`, "more than 32", "idp.person_claims")
}
