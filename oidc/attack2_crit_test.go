package oidc_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
)

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

// TestAttack2CritSpelledOtherwise: crit and b64 are refused however the
// header spells them to a JSON reader: with escaped letters in the member
// name, or twice with the last one harmless. The issuer's own key signs,
// so only the header decides.
func TestAttack2CritSpelledOtherwise(t *testing.T) {
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
