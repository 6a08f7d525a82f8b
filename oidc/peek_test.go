package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/jwks"
	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// Seeds: a real-looking token and the usual suspects.
var tokenSeeds = []string{
	"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJhdWQiOiJzaWdub2ZmIiwiZXhwIjoxNzQ4ODU0OTAwLCJpc3MiOiJodHRwczovL3Rva2VuLmFjdGlvbnMuZ2l0aHVidXNlcmNvbnRlbnQuY29tIiwic3ViIjoicmVwbzphY21lL2FwaSJ9.c2ln",
	"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
	"eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4IiwiYXVkIjpbImEiLDFdfQ.c2ln",
	"e30.e30.e30",
	"..",
	"a.b.c.d.e",
	"",
	"bnVsbA.bnVsbA.",
	"eyJhbGciOm51bGx9.eyJpc3MiOm51bGx9.x",
}

func FuzzPeekIssuer(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, terr := peekToken(raw)
		if (p == nil) == (terr == nil) {
			t.Fatalf("peekToken returned %v and %v", p, terr)
		}
		if terr != nil {
			if terr.Reason != ReasonMalformed {
				t.Fatalf("reason %s", terr.Reason)
			}
			return
		}
		if p.iss == "" || p.alg == "" {
			t.Fatalf("accepted without iss or alg: %+v", p)
		}
	})
}

func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"x","exp":1748854900,"nbf":1.5,"iat":-1,"groups":["a",1,null],"run_id":12345678901234567890,"ok":true}`,
		`{"exp":1e300,"nbf":"x","iat":null,"aud":["a",{}]}`,
		`[]`, `null`, `{}`, `{"a":1} {}`, `{"exp":-9e18}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := idtoken.Decode(payload)
		if err != nil {
			return
		}
		idtoken.Flatten(m)
		for _, name := range []string{"exp", "nbf", "iat"} {
			if ts, ok, err := idtoken.NumericDate(m, name); ok && err == nil && (ts.Unix() > idtoken.MaxUnixSeconds || ts.Unix() < -idtoken.MaxUnixSeconds-1) {
				t.Fatalf("%s = %s out of range", name, ts)
			}
		}
		idtoken.StringList(m["groups"])
		_, _ = audienceOf(m["aud"])
	})
}

// staticKeySet returns a keySet holding keys that never downloads.
func staticKeySet(keys ...jose.JSONWebKey) *keySet {
	static := make([]jwks.Key, len(keys))
	for i, k := range keys {
		static[i] = jwks.Key{JSONWebKey: k}
	}
	return &keySet{
		issuer:          "https://issuer.example",
		jwksURL:         "https://issuer.example/keys",
		refreshInterval: time.Hour,
		retryInterval:   time.Hour,
		keys:            jwks.Static(static...),
	}
}

func FuzzKeySetVerify(f *testing.F) {
	k := testkeys.New(f, "k1", jose.RS256)
	ks := staticKeySet(k.Public())
	good := testkeys.Sign(f, k.Priv, k.Alg, k.KID, []byte(`{"iss":"https://issuer.example"}`), nil)
	f.Add(good)
	for _, s := range tokenSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		payload, err := ks.VerifySignature(context.Background(), raw)
		if err == nil && raw != good && len(payload) == 0 {
			t.Fatalf("verified with an empty payload")
		}
	})
}

// The key set refuses HMAC on its own, not only because the verifier
// checked alg first.
func TestKeySetRefusesHMACWithThePublicKey(t *testing.T) {
	priv := testkeys.RSA(t, 2048)
	ks := staticKeySet(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "k1", Use: "sig"})
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	in := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://issuer.example"}`))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(in))
	raw := in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	_, err = ks.VerifySignature(context.Background(), raw)
	te, ok := err.(*TokenError)
	if !ok || te.Reason != ReasonBadAlgorithm {
		t.Fatalf("err = %v, want bad_algorithm", err)
	}
}

func TestFetchJWKSKeepsOnlyUsablePublicKeys(t *testing.T) {
	// One usable RSA key, plus keys that must be skipped: a symmetric key,
	// an encryption key, an unsupported algorithm, a weak RSA key, a
	// private key (kept, but only its public half) and garbage.
	priv, weak := testkeys.RSA(t, 2048), testkeys.RSA(t, 1024)
	pubJSON, _ := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "good", Algorithm: "RS256", Use: "sig"}.MarshalJSON()
	privJSON, _ := jose.JSONWebKey{Key: priv, KeyID: "leaked-private", Use: "sig"}.MarshalJSON()
	weakJSON, _ := jose.JSONWebKey{Key: &weak.PublicKey, KeyID: "weak"}.MarshalJSON()
	encJSON, _ := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "enc", Use: "enc"}.MarshalJSON()
	body := `{"keys":[` + string(pubJSON) + `,` + string(privJSON) + `,` + string(weakJSON) + `,` + string(encJSON) + `,
		{"kty":"oct","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
		{"kty":"EC","kid":"k256","alg":"ES256K","crv":"secp256k1","x":"AA","y":"AA"},
		{"kty":"nonsense","kid":"junk"}]}`
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		_, _ = rec.WriteString(body)
		return rec.Result(), nil
	})}
	keys, err := jwks.Fetch(context.Background(), client, "https://issuer.example/keys", idtoken.AllowedAlgs)
	if err != nil {
		t.Fatal(err)
	}
	ids := testkeys.PublicKeyIDs(t, keys)
	if len(ids) != 2 || ids[0] != "good" || ids[1] != "leaked-private" {
		t.Fatalf("kept keys %v, want [good leaked-private]", ids)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
