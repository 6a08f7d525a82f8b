// Package ssftest is a Shared Signals transmitter for tests: it publishes
// its signing keys as a JSON Web Key Set on loopback and signs Security
// Event Tokens (RFC 8417) in their real wire format, which tests then push
// to signoff as a transmitter would (RFC 8935).
package ssftest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
)

// Key is a signing key of a transmitter (or of an attacker).
type Key = testkeys.Key

// NewKey makes a fresh key for alg (ES256, RS256, PS256 or EdDSA) that
// signs SETs: typ "secevent+jwt".
func NewKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) *Key {
	t.Helper()
	k := testkeys.New(t, kid, alg)
	k.Typ = "secevent+jwt"
	return k
}

// Transmitter publishes keys at a JWKS URL on loopback and signs SETs with
// its current key.
type Transmitter struct {
	// Issuer is the iss of the SETs it signs.
	Issuer string
	// Key signs its SETs; it is published.
	Key *Key

	srv  *httptest.Server
	keys testkeys.KeySet
}

// New starts a transmitter for issuer with a fresh ES256 key, published.
func New(t testing.TB, issuer string) *Transmitter {
	tr := &Transmitter{Issuer: issuer, Key: NewKey(t, "ssf-key-1", jose.ES256)}
	tr.keys.ContentType = "application/jwk-set+json"
	tr.Publish(tr.Key)
	mux := http.NewServeMux()
	mux.Handle("/jwks.json", &tr.keys)
	tr.srv = httptest.NewServer(mux)
	t.Cleanup(tr.srv.Close)
	return tr
}

// JWKSURL is where the keys are published.
func (tr *Transmitter) JWKSURL() string { return tr.srv.URL + "/jwks.json" }

// JWKSHits counts downloads of the key set.
func (tr *Transmitter) JWKSHits() int { return tr.keys.Hits() }

// Publish replaces the published keys.
func (tr *Transmitter) Publish(keys ...*Key) { tr.keys.Publish(keys...) }

// SetDown makes the key set answer 503 (true) or serve again (false).
func (tr *Transmitter) SetDown(down bool) {
	code := 0
	if down {
		code = http.StatusServiceUnavailable
	}
	tr.keys.SetStatus(code)
}

// Claims returns the claims of a SET from this transmitter to aud, issued
// at iat with a fresh jti, carrying one event of eventType whose object is
// event (nil: an empty object). Callers add sub_id or change claims.
func (tr *Transmitter) Claims(aud string, iat time.Time, eventType string, event map[string]any) map[string]any {
	if event == nil {
		event = map[string]any{}
	}
	return map[string]any{
		"iss":    tr.Issuer,
		"aud":    aud,
		"iat":    iat.Unix(),
		"jti":    NewJTI(),
		"events": map[string]any{eventType: event},
	}
}

// Sign signs claims with the transmitter's key.
func (tr *Transmitter) Sign(t testing.TB, claims map[string]any) string {
	return tr.Key.Sign(t, claims)
}

// NewJTI returns a random jti.
func NewJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// IssSub is an iss_sub subject identifier (RFC 9493).
func IssSub(iss, sub string) map[string]any {
	return map[string]any{"format": "iss_sub", "iss": iss, "sub": sub}
}

// Email is an email subject identifier (RFC 9493).
func Email(addr string) map[string]any {
	return map[string]any{"format": "email", "email": addr}
}

// Push posts set to url as RFC 8935 push delivery does, with bearer as the
// Authorization header when not empty, and returns the status and body.
func Push(t testing.TB, url, set, bearer string) (int, []byte) {
	t.Helper()
	return PushAs(t, url, "application/secevent+jwt", set, bearer)
}

// PushAs is Push with another Content-Type.
func PushAs(t testing.TB, url, contentType, body, bearer string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}
