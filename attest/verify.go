package attest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Check names what an attestation failed (VerifyError.Check).
type Check string

// The checks Verify makes, in the order it makes them.
const (
	// CheckMalformed: not a compact JWS, or its claims are not an
	// attestation's (one is missing or of the wrong type).
	CheckMalformed Check = "malformed"
	// CheckAlgorithm: an alg other than ES256 or RS256 (none, HS256, …),
	// or one that does not fit the key the kid names.
	CheckAlgorithm Check = "algorithm"
	// CheckType: the typ header is not approval+jwt, or a crit header
	// is present.
	CheckType Check = "type"
	// CheckUnknownKey: no kid, or a kid the key set does not hold.
	CheckUnknownKey Check = "unknown_key"
	// CheckSignature: the signature does not verify with that key (the
	// token was changed, or signed by another key).
	CheckSignature Check = "signature"
	// CheckIssuer: iss is not the expected issuer.
	CheckIssuer Check = "issuer"
	// CheckAudience: aud is not the expected audience.
	CheckAudience Check = "audience"
	// CheckExpired: exp has passed (beyond the leeway).
	CheckExpired Check = "expired"
	// CheckNotYetValid: nbf (or iat) is still ahead (beyond the leeway).
	CheckNotYetValid Check = "not_yet_valid"
	// CheckAction: the approved action is not the expected one.
	CheckAction Check = "action"
	// CheckParams: the approved params are not the expected ones.
	CheckParams Check = "params"
)

// VerifyError says which check an attestation failed and why. Verify
// returns every refusal as one; find it with errors.As.
type VerifyError struct {
	Check   Check
	Message string
}

func (e *VerifyError) Error() string { return string(e.Check) + ": " + e.Message }

func refuse(c Check, format string, args ...any) *VerifyError {
	return &VerifyError{Check: c, Message: fmt.Sprintf(format, args...)}
}

// Expected is what an attestation must say for a receiver to act on it.
type Expected struct {
	// Audience must equal aud. Required: a receiver that accepted any
	// audience would take attestations meant for another system.
	Audience string
	// Issuer, when set, must equal iss (signoff's public_url, without a
	// trailing slash). Leave it empty only when the key set is the trust
	// anchor (keys that only one signoff server holds).
	Issuer string
	// Action, when set, must equal the approved action.
	Action string
	// Params pins parameters: each must have been approved with exactly
	// this value. With ExactParams the approved params must be exactly
	// these, none more.
	Params      map[string]string
	ExactParams bool
}

// VerifyOptions are the clock and its tolerance.
type VerifyOptions struct {
	// Now is the receiver's clock; time.Now when nil.
	Now func() time.Time
	// Leeway is how far the receiver's clock may be from signoff's: an
	// attestation is still taken this long after exp and this long before
	// nbf. The zero value allows none; DefaultLeeway is what `signoff
	// attest verify` uses.
	Leeway time.Duration
}

// Verify checks token, a compact attestation, against keys and want, and
// returns its claims. A refusal is a *VerifyError naming the check that
// failed: the header (alg ES256 or RS256 fitting the key, typ
// approval+jwt, no crit, a kid the set holds), the signature, then the
// claims (all present; iss, aud, exp, nbf and iat, action and params as
// expected).
//
// Verify does not remember attestations it has seen: within its lifetime
// an attestation can be presented more than once. A receiver that must act
// once per approval deduplicates on Claims.Subject (the request id) or
// Claims.ID (jti).
func Verify(token string, keys *KeySet, want Expected, opts VerifyOptions) (*Claims, error) {
	if strings.TrimSpace(want.Audience) == "" {
		return nil, errors.New("attest: Verify needs the expected audience")
	}
	token = strings.TrimSpace(token)
	hdr, err := readHeader(token)
	if err != nil {
		return nil, err
	}
	key := keys.lookup(hdr.kid)
	if key == nil {
		return nil, refuse(CheckUnknownKey, "kid %q is not among the published keys %v", truncate(hdr.kid, 80), keys.KeyIDs())
	}
	if key.alg != hdr.alg {
		return nil, refuse(CheckAlgorithm, "the header says %s but key %s is an %s key", hdr.alg, key.kid, key.alg)
	}
	jws, err := jose.ParseSignedCompact(token, algorithms)
	if err != nil {
		return nil, refuse(CheckMalformed, "not a compact JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse(CheckMalformed, "%d signatures; an attestation has one", len(jws.Signatures))
	}
	payload, err := jws.Verify(key.key)
	if err != nil {
		return nil, refuse(CheckSignature, "the signature does not verify with key %s: the attestation was changed, or signed by another key", key.kid)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, refuse(CheckMalformed, "%v", err)
	}
	if err := checkClaims(&c, want, opts); err != nil {
		return nil, err
	}
	return &c, nil
}

// header is what Verify reads of the protected header before the
// signature, so that a refusal names the check that failed rather than
// what the JOSE library says.
type header struct {
	alg, kid string
}

func readHeader(token string) (header, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return header{}, refuse(CheckMalformed, "not a compact JWT (three base64url parts joined by dots)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return header{}, refuse(CheckMalformed, "the header is not base64url: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		return header{}, refuse(CheckMalformed, "the header is not a JSON object: %v", err)
	}
	alg, _ := h["alg"].(string)
	if alg != ES256 && alg != RS256 {
		return header{}, refuse(CheckAlgorithm, "alg %q; attestations are signed ES256 or RS256", truncate(alg, 40))
	}
	typ, _ := h["typ"].(string)
	if t := strings.ToLower(typ); t != Type && t != "application/"+Type {
		return header{}, refuse(CheckType, "typ %q; an attestation's is %q", truncate(typ, 60), Type)
	}
	if _, ok := h["crit"]; ok {
		return header{}, refuse(CheckType, "the header marks parameters critical (crit); attestations have none")
	}
	kid, _ := h["kid"].(string)
	if kid == "" {
		return header{}, refuse(CheckUnknownKey, "the header names no key (kid)")
	}
	return header{alg: alg, kid: kid}, nil
}

func checkClaims(c *Claims, want Expected, opts VerifyOptions) error {
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	leeway := max(opts.Leeway, 0)
	if want.Issuer != "" && c.Issuer != strings.TrimSuffix(want.Issuer, "/") {
		return refuse(CheckIssuer, "issued by %q, not %q", truncate(c.Issuer, 200), want.Issuer)
	}
	if c.Audience != want.Audience {
		return refuse(CheckAudience, "for audience %q, not %q", truncate(c.Audience, 200), want.Audience)
	}
	if !now.Before(c.Expiry.Add(leeway)) {
		return refuse(CheckExpired, "expired at %s (now %s, leeway %s)", stamp(c.Expiry), stamp(now), leeway)
	}
	if now.Add(leeway).Before(c.NotBefore) {
		return refuse(CheckNotYetValid, "not valid before %s (now %s, leeway %s)", stamp(c.NotBefore), stamp(now), leeway)
	}
	if now.Add(leeway).Before(c.IssuedAt) {
		return refuse(CheckNotYetValid, "issued in the future, at %s (now %s, leeway %s)", stamp(c.IssuedAt), stamp(now), leeway)
	}
	if want.Action != "" && c.Action != want.Action {
		return refuse(CheckAction, "approves action %q, not %q", truncate(c.Action, 100), want.Action)
	}
	for _, k := range slices.Sorted(maps.Keys(want.Params)) {
		got, ok := c.Params[k]
		switch {
		case !ok:
			return refuse(CheckParams, "param %s was not part of the approval (approved params: %s)", k, paramList(c.Params))
		case got != want.Params[k]:
			return refuse(CheckParams, "param %s was approved as %q, not %q", k, truncate(got, 200), want.Params[k])
		}
	}
	if want.ExactParams {
		for _, k := range slices.Sorted(maps.Keys(c.Params)) {
			if _, ok := want.Params[k]; !ok {
				return refuse(CheckParams, "param %s=%q was approved too, and exact params were asked for", k, truncate(c.Params[k], 200))
			}
		}
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func paramList(p map[string]string) string {
	if len(p) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(p)), ", ")
}

// truncate shortens what an attestation says before it goes into a
// message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
