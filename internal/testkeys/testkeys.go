// Package testkeys makes signing keys, compact JWS and JSON Web Key Sets
// for tests: fresh keys of the algorithms signoff verifies, tokens signed
// with them in their real wire format, and an HTTP handler that publishes
// a key set with a fault switch and a download count.
package testkeys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key of an issuer (or of an attacker).
type Key struct {
	// KID names the key in the header of what it signs; empty: no kid.
	KID string
	Alg jose.SignatureAlgorithm
	// Typ is the typ header member of what it signs; empty: none.
	Typ  string
	Priv crypto.Signer
}

// New makes a fresh key for alg (ES256, RS256, RS384, PS256 or EdDSA)
// that signs tokens of typ "JWT".
func New(t testing.TB, kid string, alg jose.SignatureAlgorithm) *Key {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256, jose.RS384, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("testkeys: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Alg: alg, Typ: "JWT", Priv: priv}
}

// Public is the key as a JWKS publishes it.
func (k *Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Priv.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// PublicKeyBytes returns the JSON encoding of the public key, as an
// attacker would use it for an HMAC secret.
func (k *Key) PublicKeyBytes(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sign returns the compact JWS of claims with the key's typ and kid.
func (k *Key) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return k.SignWith(t, claims, nil)
}

// SignWith is Sign with header members added or replaced (a nil value
// leaves the member out).
func (k *Key) SignWith(t testing.TB, claims, header map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]any{}
	if k.Typ != "" {
		h["typ"] = k.Typ
	}
	for name, v := range header {
		h[name] = v
	}
	return Sign(t, k.Priv, k.Alg, k.KID, payload, h)
}

// Sign returns the compact JWS of payload by priv with alg, naming kid in
// its header (no kid when empty) and carrying the header members whose
// value is not nil.
func Sign(t testing.TB, priv crypto.Signer, alg jose.SignatureAlgorithm, kid string, payload []byte, header map[string]any) string {
	t.Helper()
	key := any(priv)
	if kid != "" {
		key = jose.JSONWebKey{Key: priv, KeyID: kid}
	}
	opts := &jose.SignerOptions{}
	for name, v := range header {
		if v != nil {
			opts = opts.WithHeader(jose.HeaderKey(name), v)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
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

// KeySet is an http.Handler that serves the public keys it publishes as a
// JSON Web Key Set, whatever the request path. The zero value serves an
// empty set.
type KeySet struct {
	// ContentType is the media type of the set; empty: application/json.
	ContentType string

	mu     sync.Mutex
	keys   []jose.JSONWebKey
	status int
	hits   atomic.Int32
}

// Publish replaces the published keys.
func (s *KeySet) Publish(keys ...*Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.Public())
	}
}

// SetStatus makes the set answer with an error status (non-zero) or serve
// again (0).
func (s *KeySet) SetStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

// Hits counts requests for the set.
func (s *KeySet) Hits() int { return int(s.hits.Load()) }

func (s *KeySet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	status, set := s.status, jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), s.keys...)}
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "key set unavailable", status)
		return
	}
	ct := s.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	_ = json.NewEncoder(w).Encode(set)
}
