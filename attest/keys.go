package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// The two signature algorithms of attestations: what every cloud's
// workload identity federation and every JOSE library accepts.
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// minRSABits is the smallest RSA key accepted, to sign or to verify.
const minRSABits = 2048

// generatedRSABits is the size of the RSA keys GenerateKey makes.
const generatedRSABits = 3072

// algorithms are the algorithms Verify accepts, as go-jose names them.
var algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}

// Algorithm returns the signature algorithm of a public key: ES256 for an
// ECDSA P-256 key, RS256 for an RSA key of at least 2048 bits. Any other
// key is refused, with what to use instead.
func Algorithm(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("an ECDSA key on %s; attestations are signed ES256, which needs P-256 (or use an RSA key for RS256)", k.Curve.Params().Name)
		}
		return ES256, nil
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return "", fmt.Errorf("an RSA key of %d bits; RS256 needs at least %d", n, minRSABits)
		}
		return RS256, nil
	}
	return "", fmt.Errorf("a %s key; attestations are signed ES256 (an ECDSA P-256 key) or RS256 (an RSA key of at least %d bits)", keyKind(pub), minRSABits)
}

func keyKind(k any) string {
	switch k.(type) {
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	case []byte:
		return "symmetric"
	case nil:
		return "missing"
	}
	return fmt.Sprintf("%T", k)
}

// KeyID is the kid of a public key: its RFC 7638 JWK thumbprint (SHA-256,
// base64url), so every replica holding the same key names it alike and a
// receiver can recompute it.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// GenerateKey makes a new signing key: ECDSA P-256 (ES256), or with rsa an
// RSA key of 3072 bits (RS256).
func GenerateKey(useRSA bool) (crypto.Signer, error) {
	if useRSA {
		return rsa.GenerateKey(rand.Reader, generatedRSABits)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// WritePrivateKeyPEM writes key as a PKCS#8 "PRIVATE KEY" PEM block.
func WritePrivateKeyPEM(w io.Writer, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode the private key: %w", err)
	}
	return pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WritePublicKeyPEM writes pub as a PKIX "PUBLIC KEY" PEM block.
func WritePublicKeyPEM(w io.Writer, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encode the public key: %w", err)
	}
	return pem.Encode(w, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePrivateKeyPEM reads a signing key: the first PEM block of data, a
// "PRIVATE KEY" (PKCS#8), "EC PRIVATE KEY" (SEC 1) or "RSA PRIVATE KEY"
// (PKCS#1), holding a key Algorithm accepts.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("holds no PEM block; write a key with `signoff attest keygen -o FILE`")
	}
	key, err := parsePrivateBlock(block)
	if err != nil {
		return nil, err
	}
	if _, err := Algorithm(key.Public()); err != nil {
		return nil, fmt.Errorf("holds %w", err)
	}
	return key, nil
}

func parsePrivateBlock(block *pem.Block) (crypto.Signer, error) {
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("holds a PEM block %q, not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("holds a %s that does not parse: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("holds a %s key, which cannot sign", keyKind(key))
	}
	return signer, nil
}

// ParsePublicKeyPEM reads a key to publish (a retired signing key): the
// first PEM block of data, a "PUBLIC KEY" (PKIX) or any private key
// ParsePrivateKeyPEM reads (only its public half is kept).
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("holds no PEM block")
	}
	var pub crypto.PublicKey
	if block.Type == "PUBLIC KEY" {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("holds a PUBLIC KEY that does not parse: %w", err)
		}
		pub = k
	} else {
		k, err := parsePrivateBlock(block)
		if err != nil {
			return nil, err
		}
		pub = k.Public()
	}
	if _, err := Algorithm(pub); err != nil {
		return nil, fmt.Errorf("holds %w", err)
	}
	return pub, nil
}

// publicKey is one key of a KeySet.
type publicKey struct {
	kid string
	alg string
	key crypto.PublicKey
}

// KeySet is the public keys an attestation may be signed with, by kid.
// The zero value holds none.
type KeySet struct {
	keys []publicKey
}

// NewKeySet returns the set of keys, each under its KeyID, in the order
// given; a key given twice is kept once. Of a private key given, only the
// public half is kept.
func NewKeySet(keys ...crypto.PublicKey) (*KeySet, error) {
	ks := &KeySet{}
	for i, k := range keys {
		if s, ok := k.(crypto.Signer); ok {
			k = s.Public()
		}
		alg, err := Algorithm(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		kid, err := KeyID(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if ks.lookup(kid) == nil {
			ks.keys = append(ks.keys, publicKey{kid: kid, alg: alg, key: k})
		}
	}
	return ks, nil
}

// maxKeySetBytes bounds a JWKS document ParseKeySet and FetchKeySet read.
const maxKeySetBytes = 1 << 20

// ParseKeySet reads a JWKS document (RFC 7517), such as the one signoff
// serves at JWKSPath. It keeps the keys an attestation can be signed with
// (ECDSA P-256 and RSA of at least 2048 bits, each with a kid, use "sig"
// or none, and an alg, when given, that fits the key) and only their
// public halves; other keys (symmetric ones included) are skipped. A set
// with no usable key, or two keys under one kid, is refused.
func ParseKeySet(data []byte) (*KeySet, error) {
	if len(data) > maxKeySetBytes {
		return nil, fmt.Errorf("the key set is %d bytes, over the %d-byte limit", len(data), maxKeySetBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("the key set is not a JWKS document ({\"keys\": [...]}): %w", err)
	}
	ks := &KeySet{}
	for _, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue // a key type this package does not use
		}
		if jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		pub := jwk.Key
		if s, ok := pub.(crypto.Signer); ok {
			pub = s.Public() // a private key published by mistake: keep the public half only
		}
		alg, err := Algorithm(pub)
		if err != nil || (jwk.Algorithm != "" && jwk.Algorithm != alg) {
			continue
		}
		if ks.lookup(jwk.KeyID) != nil {
			return nil, fmt.Errorf("the key set holds two keys with kid %q", jwk.KeyID)
		}
		ks.keys = append(ks.keys, publicKey{kid: jwk.KeyID, alg: alg, key: pub})
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("the key set holds no ES256 (P-256) or RS256 (RSA ≥ 2048 bits) signing key with a kid")
	}
	return ks, nil
}

// JSON returns the set as a JWKS document: for each key its public
// parameters, kid, alg and use "sig"; never a private parameter.
func (ks *KeySet) JSON() ([]byte, error) {
	out := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range ks.all() {
		out.Keys = append(out.Keys, jose.JSONWebKey{Key: k.key, KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	return json.Marshal(out)
}

// KeyIDs returns the kids of the set, in order.
func (ks *KeySet) KeyIDs() []string {
	var out []string
	for _, k := range ks.all() {
		out = append(out, k.kid)
	}
	return out
}

// Algorithms returns the algorithms of the set's keys, each once, in the
// order of the keys.
func (ks *KeySet) Algorithms() []string {
	var out []string
	for _, k := range ks.all() {
		if !slices.Contains(out, k.alg) {
			out = append(out, k.alg)
		}
	}
	return out
}

func (ks *KeySet) all() []publicKey {
	if ks == nil {
		return nil
	}
	return ks.keys
}

func (ks *KeySet) lookup(kid string) *publicKey {
	for i, k := range ks.all() {
		if k.kid == kid {
			return &ks.keys[i]
		}
	}
	return nil
}
