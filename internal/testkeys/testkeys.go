// Package testkeys makes signing keys, compact JWS and JSON Web Key Sets
// for tests: fresh keys of the algorithms signoff verifies, tokens signed
// with them in their real wire format, and an HTTP handler that publishes
// a key set with a fault switch and a download count. It also holds the
// checks the verifiers' tests share: that a key set download keeps only
// public keys, and that downloads for unknown kids are paced.
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
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/jwks"
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
	var priv crypto.Signer
	switch alg {
	case jose.ES256:
		priv = EC(t, elliptic.P256())
	case jose.RS256, jose.RS384, jose.PS256:
		priv = RSA(t, 2048)
	case jose.EdDSA:
		priv = Ed25519(t)
	default:
		t.Fatalf("testkeys: unsupported alg %s", alg)
	}
	return &Key{KID: kid, Alg: alg, Typ: "JWT", Priv: priv}
}

// RSA returns a fresh RSA key of bits (fewer than 2048 make a key that
// must be refused as weak).
func RSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// EC returns a fresh ECDSA key on curve.
func EC(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Ed25519 returns a fresh Ed25519 key.
func Ed25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
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

// Claims returns base with extra merged in: a nil value in extra deletes
// the claim, any other value adds or replaces it. base is changed and
// returned.
func Claims(base, extra map[string]any) map[string]any {
	for name, v := range extra {
		if v == nil {
			delete(base, name)
		} else {
			base[name] = v
		}
	}
	return base
}

// PacedRefresh is a verifier that downloads its key set again when a token
// names an unknown kid, at most once per refresh interval, as
// CheckPacedRefresh drives it.
type PacedRefresh struct {
	// Tokens is how many tokens naming unknown kids each spray presents
	// at once.
	Tokens int
	// Verify verifies the i-th token of a spray.
	Verify func(i int) error
	// Refused reports whether err refuses a token for naming an unknown
	// kid.
	Refused func(err error) bool
	// Hits counts key set downloads; one has been made before the first
	// spray.
	Hits func() int
	// Advance moves the verifier's clock on.
	Advance func(time.Duration)
	// Next is how far the clock moves to reach the next refresh interval;
	// Within how far it moves after that, staying inside that interval.
	Next, Within time.Duration
}

// CheckPacedRefresh sprays tokens naming unknown kids three times: at
// once, after p.Next and after p.Within more. Every token must be refused,
// and only the second spray may download the key set (once).
func CheckPacedRefresh(t testing.TB, p PacedRefresh) {
	t.Helper()
	spray := func(wantHits int, when string) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range p.Tokens {
			wg.Go(func() {
				if err := p.Verify(i); !p.Refused(err) {
					t.Errorf("token %d naming an unknown kid: err = %v, want the unknown-key refusal", i, err)
				}
			})
		}
		wg.Wait()
		if n := p.Hits(); n != wantHits {
			t.Fatalf("key set fetched %d times after a spray %s, want %d", n, when, wantHits)
		}
	}
	spray(1, "within the interval")
	p.Advance(p.Next)
	spray(2, "in the next interval")
	p.Advance(p.Within)
	spray(2, "later in that interval")
}

// PublicKeyIDs returns the kids of keys in their order, failing t for each
// key that is not a public key.
func PublicKeyIDs(t testing.TB, keys []jwks.Key) []string {
	t.Helper()
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.KeyID)
		if !k.IsPublic() {
			t.Errorf("key %s is not public", k.KeyID)
		}
	}
	return ids
}
