// Package attesttest checks approval attestations in tests the way a
// receiver with a stock JWT library would, independently of signoff's own
// code: keys decoded from the published JWKS with the standard library,
// the token verified with github.com/golang-jwt/jwt/v5. signoff signs with
// go-jose; a test that read its tokens back with go-jose, or with package
// attest, would only show that signoff agrees with itself.
package attesttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Keys decodes a JWKS document, kid → public key, and fails t unless
// every key is a signing key (use sig, a kid) of ES256 on P-256 or RS256.
func Keys(t testing.TB, jwks []byte) map[string]crypto.PublicKey {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS %s: %v", jwks, err)
	}
	out := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		str := func(name string) string { s, _ := k[name].(string); return s }
		raw := func(name string) []byte {
			b, err := base64.RawURLEncoding.DecodeString(str(name))
			if err != nil || len(b) == 0 {
				t.Fatalf("JWKS member %s of %v: %v", name, k, err)
			}
			return b
		}
		num := func(name string) *big.Int { return new(big.Int).SetBytes(raw(name)) }
		if str("use") != "sig" || str("kid") == "" {
			t.Errorf("JWKS key %v: want use sig and a kid", k)
		}
		switch str("kty") {
		case "EC":
			if str("crv") != "P-256" || str("alg") != "ES256" {
				t.Errorf("EC key %v: want P-256 and ES256", k)
			}
			// RFC 7518 §6.2.1.2: x and y are the full 32 bytes each.
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, raw("x")...), raw("y")...))
			if err != nil {
				t.Fatalf("EC key %v: %v", k, err)
			}
			out[str("kid")] = pub
		case "RSA":
			if str("alg") != "RS256" {
				t.Errorf("RSA key %v: want RS256", k)
			}
			out[str("kid")] = &rsa.PublicKey{N: num("n"), E: int(num("e").Int64())}
		default:
			t.Errorf("JWKS key of type %q", str("kty"))
		}
	}
	return out
}

// PrivateMembers are the JWK members that hold private key material (RFC
// 7518 §6.2.2, §6.3.2, §6.4): none may appear in a published key set.
var PrivateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// CheckPublicOnly fails t when a key of the JWKS document holds a private
// member.
func CheckPublicOnly(t testing.TB, jwks []byte) {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS %s: %v", jwks, err)
	}
	for _, k := range set.Keys {
		for _, m := range PrivateMembers {
			if _, ok := k[m]; ok {
				t.Errorf("a published key holds the private member %q: %v", m, k)
			}
		}
	}
}

// Parse verifies token with golang-jwt against the keys of jwks, as a
// receiver would: algorithm ES256 or RS256, the key its kid names, iss,
// aud, and exp, nbf and iat all required and checked at now. It returns
// the parsed token (header and claims).
func Parse(t testing.TB, token string, jwks []byte, issuer, audience string, now time.Time) (*jwt.Token, error) {
	t.Helper()
	keys := Keys(t, jwks)
	return jwt.Parse(token, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, errors.New("no published key has this kid")
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{"ES256", "RS256"}),
		jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithNotBeforeRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
}

// Claims is Parse that fails t when the token does not verify or is not
// typed approval+jwt, and returns its claims.
func Claims(t testing.TB, token string, jwks []byte, issuer, audience string, now time.Time) jwt.MapClaims {
	t.Helper()
	tok, err := Parse(t, token, jwks, issuer, audience, now)
	if err != nil {
		t.Fatalf("a stock JWT library refuses the attestation: %v", err)
	}
	if tok.Header["typ"] != "approval+jwt" {
		t.Fatalf("header %v: want typ approval+jwt", tok.Header)
	}
	return tok.Claims.(jwt.MapClaims)
}
