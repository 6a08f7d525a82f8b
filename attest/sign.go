package attest

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// SignerOptions configure a Signer.
type SignerOptions struct {
	// Issuer is the iss of every attestation and where the keys are
	// published: signoff's public_url (an absolute http(s) URL; a
	// trailing slash is dropped).
	Issuer string
	// Key signs (attest.signing_key). Its algorithm follows from its type
	// (see Algorithm).
	Key crypto.Signer
	// Previous are published beside Key but never sign
	// (attest.previous_key_files): retired keys whose attestations have
	// not all expired yet, or a next key published ahead of its use.
	Previous []crypto.PublicKey
	// TTL is how long an attestation is valid; DefaultTTL when 0, at most
	// MaxTTL.
	TTL time.Duration
}

// Signer signs attestations with one key and publishes it with the
// retired ones. It is safe for concurrent use.
type Signer struct {
	issuer    string
	ttl       time.Duration
	kid       string
	signer    jose.Signer
	keys      *KeySet
	jwks      []byte
	discovery []byte
}

// Signed is one attestation: the compact JWT and what the audit log
// records of it.
type Signed struct {
	Token  string
	KeyID  string
	ID     string
	Expiry time.Time
}

// NewSigner returns a Signer, or says what is wrong with its options.
func NewSigner(o SignerOptions) (*Signer, error) {
	iss, err := issuerURL(o.Issuer)
	if err != nil {
		return nil, err
	}
	if o.Key == nil {
		return nil, errors.New("no signing key")
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl > MaxTTL {
		return nil, fmt.Errorf("ttl %s is out of range: between 1s and %s", ttl, MaxTTL)
	}
	alg, err := Algorithm(o.Key.Public())
	if err != nil {
		return nil, fmt.Errorf("the signing key is %w", err)
	}
	keys, err := NewKeySet(append([]crypto.PublicKey{o.Key.Public()}, o.Previous...)...)
	if err != nil {
		return nil, err
	}
	kid := keys.keys[0].kid
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: o.Key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(Type),
	)
	if err != nil {
		return nil, fmt.Errorf("make the signer: %w", err)
	}
	s := &Signer{issuer: iss, ttl: ttl, kid: kid, signer: signer, keys: keys}
	if s.jwks, err = keys.JSON(); err != nil {
		return nil, fmt.Errorf("encode the key set: %w", err)
	}
	if s.discovery, err = json.Marshal(discoveryDocument(iss, keys.Algorithms())); err != nil {
		return nil, fmt.Errorf("encode the discovery document: %w", err)
	}
	return s, nil
}

// issuerURL checks an issuer URL and drops a trailing slash.
func issuerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("issuer %q must be an absolute http(s) URL without query, fragment or user info (signoff's public_url)", raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// Issuer is the iss of the attestations: the public_url without a
// trailing slash.
func (s *Signer) Issuer() string { return s.issuer }

// KeyID is the kid of the key that signs.
func (s *Signer) KeyID() string { return s.kid }

// TTL is how long each attestation is valid.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Keys is the published key set: the signing key first, then the
// previous ones.
func (s *Signer) Keys() *KeySet { return s.keys }

// JWKS is the published key set as served at JWKSPath (public keys only).
func (s *Signer) JWKS() []byte { return slices.Clone(s.jwks) }

// Discovery is the OpenID discovery document served at DiscoveryPath.
func (s *Signer) Discovery() []byte { return slices.Clone(s.discovery) }

// Sign signs c. It sets iss to the Signer's issuer, nbf to iat, exp to
// iat plus the TTL and, when c has none, a random jti; iat and decided_at
// are the caller's (the moment of the approval, from its clock; iat
// defaults to decided_at). sub, aud and action are required.
func (s *Signer) Sign(c Claims) (Signed, error) {
	switch {
	case c.Subject == "":
		return Signed{}, errors.New("attestation without a subject (the request id)")
	case c.Audience == "":
		return Signed{}, errors.New("attestation without an audience")
	case c.Action == "":
		return Signed{}, errors.New("attestation without an action")
	case c.DecidedAt.IsZero():
		return Signed{}, errors.New("attestation without decided_at")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = c.DecidedAt
	}
	c.Issuer = s.issuer
	c.IssuedAt = c.IssuedAt.Truncate(time.Second).UTC()
	c.DecidedAt = c.DecidedAt.Truncate(time.Second).UTC()
	c.NotBefore = c.IssuedAt
	c.Expiry = c.IssuedAt.Add(s.ttl)
	c.Params = maps.Clone(c.Params)
	c.Approvers = slices.Clone(c.Approvers)
	if c.ID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Signed{}, fmt.Errorf("random jti: %w", err)
		}
		c.ID = base64.RawURLEncoding.EncodeToString(b[:])
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return Signed{}, fmt.Errorf("encode the claims: %w", err)
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return Signed{}, fmt.Errorf("sign: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return Signed{}, fmt.Errorf("serialize: %w", err)
	}
	return Signed{Token: tok, KeyID: s.kid, ID: c.ID, Expiry: c.Expiry}, nil
}

// Discovery is the part of an OpenID Provider's discovery document
// (OpenID Connect Discovery 1.0 §3) that a relying party of attestations
// reads.
type Discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// discoveryDocument is what signoff serves at DiscoveryPath: the members
// OpenID Connect Discovery requires, with the values that fit a signer of
// attestations (cloud token services read the algorithms and refuse a
// document without the response and subject types).
func discoveryDocument(issuer string, algs []string) map[string]any {
	return map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              issuer + JWKSPath,
		"id_token_signing_alg_values_supported": algs,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"claims_supported": []string{
			"iss", "sub", "aud", "iat", "nbf", "exp", "jti",
			"action", "params", "requester", "approvers", "decided_at",
		},
	}
}
