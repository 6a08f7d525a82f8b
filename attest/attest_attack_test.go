package attest_test

// Attacks on attestations: replay to another relying party, another action
// or params, expiry, key id injection, another signoff's key.

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signoff-dev/signoff/attest"
)

// TestAttackAttestationReplayAndKeys: replay across relying parties, kid injection, a JWKS key that is
// not the signer's, expiry, action/params swaps.
func TestAttackAttestationReplayAndKeys(t *testing.T) {
	key := ecKey(t)
	s := newSigner(t, key)
	ks := keySet(t, s)
	tok := sign(t, s, approval()).Token
	hdr := map[string]any{"kid": s.KeyID(), "typ": "approval+jwt"}
	other := ecKey(t)
	otherSigner := newSigner(t, other)
	for _, tc := range []struct {
		name  string
		token string
		keys  *attest.KeySet
		want  attest.Expected
		now   time.Duration
		check attest.Check
	}{
		{"other relying party", tok, ks, attest.Expected{Issuer: issuer, Audience: "staging.example.com"}, time.Minute, attest.CheckAudience},
		{"other action, same audience", tok, ks, attest.Expected{Issuer: issuer, Audience: "deploy.example.com", Action: "rollback"}, time.Minute, attest.CheckAction},
		{"other version", tok, ks, attest.Expected{Issuer: issuer, Audience: "deploy.example.com", Params: map[string]string{"version": "1.4.3"}}, time.Minute, attest.CheckParams},
		{"expired after leeway", tok, ks, want, 16*time.Minute + time.Second, attest.CheckExpired},
		{"kid path injection", forge(t, jwt.SigningMethodES256, other, map[string]any{"kid": "../../" + s.KeyID(), "typ": "approval+jwt"}, goodClaims()), ks, want, time.Minute, attest.CheckUnknownKey},
		{"kid of another signoff's key set", sign(t, otherSigner, approval()).Token, ks, want, time.Minute, attest.CheckUnknownKey},
		{"real kid, another key", forge(t, jwt.SigningMethodES256, other, hdr, goodClaims()), ks, want, time.Minute, attest.CheckSignature},
		{"crit empty", forge(t, jwt.SigningMethodES256, key, map[string]any{"kid": s.KeyID(), "typ": "approval+jwt", "crit": []string{}}, goodClaims()), ks, want, time.Minute, attest.CheckType},
		{"typ with other case and prefix", forge(t, jwt.SigningMethodES256, key, map[string]any{"kid": s.KeyID(), "typ": "application/JWT"}, goodClaims()), ks, want, time.Minute, attest.CheckType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := attest.Verify(tc.token, tc.keys, tc.want, at(tc.now))
			var ve *attest.VerifyError
			if !errors.As(err, &ve) || ve.Check != tc.check {
				t.Errorf("Verify: %v; want check %s", err, tc.check)
			}
		})
	}
}
