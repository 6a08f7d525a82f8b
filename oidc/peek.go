package oidc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// maxTokenBytes bounds the size of a bearer token signoff parses at all.
// CI tokens are 1–3 KiB; the bound keeps a hostile client from making us
// decode megabytes.
const maxTokenBytes = 16 << 10

// peeked is what the unverified token says about itself: just enough to
// route it to the right issuer and to refuse obviously bad tokens early.
// Nothing in it is trusted.
type peeked struct {
	alg string
	kid string
	iss string
	aud []string
}

// peekToken decodes the header and claims of a compact JWS without
// verifying anything. It never panics, whatever raw holds.
func peekToken(raw string) (*peeked, *TokenError) {
	const what = "send the CI job's OIDC ID token as \"Authorization: Bearer <token>\""
	if raw == "" {
		return nil, tokenErrorf(ReasonMalformed, nil, "no token: %s", what)
	}
	if len(raw) > maxTokenBytes {
		return nil, tokenErrorf(ReasonMalformed, nil, "the token is %d bytes; signoff accepts at most %d: %s", len(raw), maxTokenBytes, what)
	}
	parts := strings.Split(raw, ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, tokenErrorf(ReasonMalformed, nil, "the token is encrypted (JWE); signoff accepts only signed JWTs: %s", what)
	default:
		return nil, tokenErrorf(ReasonMalformed, nil, "the token is not a JWT (a signed JWT is three base64url parts joined by dots; this has %d): %s", len(parts), what)
	}
	var p peeked
	h, terr := decodeObject(parts[0], "the token's header is", what)
	if terr != nil {
		return nil, terr
	}
	if err := json.Unmarshal(h["alg"], &p.alg); err != nil || p.alg == "" {
		return nil, tokenErrorf(ReasonMalformed, err, "the token's header has no alg, or it is not a string: %s", what)
	}
	if k, ok := h["kid"]; ok {
		if err := json.Unmarshal(k, &p.kid); err != nil {
			return nil, tokenErrorf(ReasonMalformed, err, "the token's kid is not a string: %s", what)
		}
	}
	if name := jwsExtension(h); name != "" {
		return nil, tokenErrorf(ReasonMalformed, nil, "the token's header carries %s, a JWS extension signoff does not implement: %s", name, what)
	}

	c, terr := decodeObject(parts[1], "the token's claims are", what)
	if terr != nil {
		return nil, terr
	}
	if err := json.Unmarshal(c["iss"], &p.iss); err != nil || p.iss == "" {
		return nil, tokenErrorf(ReasonMalformed, err, "the token has no iss (issuer) claim, or it is not a string: %s", what)
	}
	var err error
	if p.aud, err = parseAudience(c["aud"]); err != nil {
		return nil, tokenErrorf(ReasonMalformed, err, "the token's aud claim is neither a string nor a list of strings: %s", what)
	}
	return &p, nil
}

// decodeObject decodes one part of a compact JWS, a JSON object, into its
// members; its refusals start with subject ("the token's header is") and
// end with what. It decodes into a map, not a struct: encoding/json
// matches struct fields case-insensitively, go-jose reads keys exactly.
// jwsExtension names the JWS extension header h (a decoded JOSE header)
// asks for: crit (even an empty list), or b64 (RFC 7797's unencoded
// payload, which go-jose honours even without crit); "" when none.
// signoff implements none, so CI tokens and SETs that ask for one are
// refused before any key is fetched. No CI system, IdP or transmitter
// sends either.
func jwsExtension(h map[string]json.RawMessage) string {
	for _, name := range []string{"crit", "b64"} {
		if _, ok := h[name]; ok {
			return name
		}
	}
	return ""
}

func decodeObject(part, subject, what string) (map[string]json.RawMessage, *TokenError) {
	b, err := decodeSegment(part)
	if err != nil {
		return nil, tokenErrorf(ReasonMalformed, err, "%s not base64url-encoded JSON: %s", subject, what)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, tokenErrorf(ReasonMalformed, err, "%s not a JSON object: %s", subject, what)
	}
	return m, nil
}

// decodeSegment decodes one base64url part of a compact JWS. Padding is not
// allowed (RFC 7515 §2), as go-jose also insists.
func decodeSegment(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decoding base64url: %w", err)
	}
	return b, nil
}

// parseAudience reads aud, which RFC 7519 allows as one string or a list
// of strings. A missing aud is an empty list.
func parseAudience(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decoding aud: %w", err)
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("decoding aud: %w", err)
	}
	return list, nil
}
