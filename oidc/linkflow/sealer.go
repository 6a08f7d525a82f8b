package linkflow

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/signoff-dev/signoff/storage"
)

// MinTokenKeyBytes is the shortest idp.token_encryption_key accepted.
const MinTokenKeyBytes = 32

// sealVersion is the first byte of every sealed token; it names the
// format (AES-256-GCM, 12-byte random nonce, HKDF-SHA256 key) so that a
// later format can be told apart.
const sealVersion byte = 1

// hkdfInfo separates the refresh-token key from any other key signoff
// might derive from the same secret one day.
const hkdfInfo = "signoff refresh token v1"

// errUnseal is what every failure to open a sealed token looks like:
// wrong key, altered bytes, or a token moved to another link.
var errUnseal = errors.New("the stored refresh token cannot be decrypted: it was altered, belongs to another link, or idp.token_encryption_key changed")

// tokenSealer encrypts refresh tokens before they reach the store.
//
// The key is derived from idp.token_encryption_key with HKDF-SHA256 (RFC
// 5869, no salt, info "signoff refresh token v1") to 32 bytes, used as an
// AES-256-GCM key. A sealed token is
//
//	0x01 || nonce (12 random bytes) || ciphertext and GCM tag
//
// with the link's platform, workspace, platform user, issuer and subject
// as additional authenticated data, so a sealed token copied into another
// link record does not open.
type tokenSealer struct {
	aead cipher.AEAD
}

// newTokenSealer derives the sealing key from secret (at least
// MinTokenKeyBytes bytes).
func newTokenSealer(secret []byte) (*tokenSealer, error) {
	if len(secret) < MinTokenKeyBytes {
		return nil, fmt.Errorf("the token encryption key is %d bytes; use at least %d random bytes (for example: openssl rand -base64 48)", len(secret), MinTokenKeyBytes)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the token encryption key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("token encryption key: %w", err)
	}
	return &tokenSealer{aead: aead}, nil
}

// seal encrypts a refresh token for the link l.
func (s *tokenSealer) seal(token string, l storage.IdentityLink) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sealing refresh token: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(token)+s.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, []byte(token), sealAAD(l)), nil
}

// open decrypts a token sealed for l.
func (s *tokenSealer) open(sealed []byte, l storage.IdentityLink) (string, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return "", errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealAAD(l))
	if err != nil {
		return "", errUnseal
	}
	return string(plain), nil
}

// sealAAD binds a sealed token to the link it belongs to.
func sealAAD(l storage.IdentityLink) []byte {
	parts := []string{"signoff-refresh-token/v1", l.Platform, l.Workspace, l.PlatformUser, l.Issuer, l.Subject}
	var b strings.Builder
	for _, p := range parts {
		// Length-prefixed, so no two different tuples encode alike.
		fmt.Fprintf(&b, "%d:%s;", len(p), p)
	}
	return []byte(b.String())
}
