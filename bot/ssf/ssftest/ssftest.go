// Package ssftest is a Shared Signals transmitter for tests: it publishes
// its signing keys as a JSON Web Key Set on loopback and signs Security
// Event Tokens (RFC 8417) in their real wire format, which tests then push
// to signoff as a transmitter would (RFC 8935).
package ssftest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key of a transmitter (or of an attacker).
type Key struct {
	KID  string
	Alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// NewKey makes a fresh key for alg (ES256, RS256, PS256 or EdDSA).
func NewKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) *Key {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("ssftest: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Alg: alg, priv: priv}
}

// Public is the key as a JWKS publishes it.
func (k *Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// PublicKeyBytes returns the public key's encoding, as an attacker would
// use it for an HMAC secret.
func (k *Key) PublicKeyBytes(t testing.TB) []byte {
	b, err := json.Marshal(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sign returns the compact JWS of claims with the header typ
// "secevent+jwt", the key's kid, and extra header members (a nil value
// leaves typ out).
func (k *Key) Sign(t testing.TB, claims map[string]any, header map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"typ": "secevent+jwt"}}
	for name, v := range header {
		if v == nil {
			delete(opts.ExtraHeaders, jose.HeaderKey(name))
			continue
		}
		opts.ExtraHeaders[jose.HeaderKey(name)] = v
	}
	sk := jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.KID}}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Transmitter publishes keys at a JWKS URL on loopback and signs SETs with
// its current key.
type Transmitter struct {
	// Issuer is the iss of the SETs it signs.
	Issuer string
	// Key signs its SETs; it is published.
	Key *Key

	srv       *httptest.Server
	mu        sync.Mutex
	published []jose.JSONWebKey
	down      bool
	jwksHits  atomic.Int32
}

// New starts a transmitter for issuer with a fresh ES256 key, published.
func New(t testing.TB, issuer string) *Transmitter {
	tr := &Transmitter{Issuer: issuer, Key: NewKey(t, "ssf-key-1", jose.ES256)}
	tr.Publish(tr.Key)
	tr.srv = httptest.NewServer(http.HandlerFunc(tr.serveJWKS))
	t.Cleanup(tr.srv.Close)
	return tr
}

// JWKSURL is where the keys are published.
func (tr *Transmitter) JWKSURL() string { return tr.srv.URL + "/jwks.json" }

// JWKSHits counts downloads of the key set.
func (tr *Transmitter) JWKSHits() int { return int(tr.jwksHits.Load()) }

// Publish replaces the published keys.
func (tr *Transmitter) Publish(keys ...*Key) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.published = nil
	for _, k := range keys {
		tr.published = append(tr.published, k.Public())
	}
}

// SetDown makes the key set answer 503 (true) or serve again (false).
func (tr *Transmitter) SetDown(down bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.down = down
}

func (tr *Transmitter) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/jwks.json" {
		http.NotFound(w, r)
		return
	}
	tr.jwksHits.Add(1)
	tr.mu.Lock()
	down, keys := tr.down, jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), tr.published...)}
	tr.mu.Unlock()
	if down {
		http.Error(w, "key set unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_ = json.NewEncoder(w).Encode(keys)
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
	return tr.Key.Sign(t, claims, nil)
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
