package oidc

import "fmt"

// Reason is why a requester token was refused (TokenError.Reason): one of
// the Reason… constants below. They are stable: the HTTP API may expose
// them as error codes and operators may alert on them. Nothing recognises
// a refusal by its message.
type Reason string

// Reasons a requester token is refused.
const (
	// ReasonMalformed: the bearer value is not a compact, signed JWT with
	// JSON header and claims (or it is too large).
	ReasonMalformed Reason = "malformed"
	// ReasonBadAlgorithm: the token's alg is not one of RS256, ES256, PS256,
	// EdDSA (this refuses "none" and every HMAC algorithm), or the key the
	// issuer published for its kid is for another algorithm.
	ReasonBadAlgorithm Reason = "bad_algorithm"
	// ReasonUnknownIssuer: the token's iss is not a configured requester
	// issuer.
	ReasonUnknownIssuer Reason = "unknown_issuer"
	// ReasonIssuerUnavailable: the issuer's discovery document or key set
	// could not be fetched, so nothing from it can be verified right now.
	// This is not the client's fault; callers may want to say so.
	ReasonIssuerUnavailable Reason = "issuer_unavailable"
	// ReasonUnknownKey: the token names a key id (kid) the issuer does not
	// publish, even after refreshing its key set (as far as the refresh
	// rate limit allowed).
	ReasonUnknownKey Reason = "unknown_key"
	// ReasonBadSignature: the signature does not verify with the issuer's
	// key: the token was altered or was not issued by that issuer.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonWrongIssuer: the verified iss differs from the issuer the token
	// was routed to (only reachable with inconsistent claims).
	ReasonWrongIssuer Reason = "wrong_issuer"
	// ReasonWrongAudience: aud does not contain the audience configured for
	// the issuer.
	ReasonWrongAudience Reason = "wrong_audience"
	// ReasonAmbiguousAudience: several requesters entries share the token's
	// issuer and the token's aud names more than one of their audiences.
	ReasonAmbiguousAudience Reason = "ambiguous_audience"
	// ReasonExpired: exp lies in the past by more than the allowed clock
	// skew.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: nbf or iat lies in the future by more than the
	// allowed clock skew.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonMissingClaim: a claim signoff needs (exp, sub, the configured
	// person claim) is missing or empty.
	ReasonMissingClaim Reason = "missing_claim"
	// ReasonInvalidToken: the token passed signoff's own checks but the
	// underlying OIDC verifier refused it; Err holds its reason.
	ReasonInvalidToken Reason = "invalid_token"
)

// TokenError is why a requester token was refused. Every refusal from
// [RequesterVerifier.Verify] is a *TokenError, except the caller's own
// context being cancelled. Find it with errors.As.
//
// Message says what is wrong and what to do about it. Neither Message nor
// Err ever contains the token (or any part of its encoding); Message may
// quote claim values such as iss, kid or aud.
type TokenError struct {
	// Reason is one of the Reason… constants.
	Reason Reason
	// Message is a sentence for the person running the CI job.
	Message string
	// Err is the underlying cause, if any (a network error, the OIDC
	// library's refusal).
	Err error
}

// Error returns Message.
func (e *TokenError) Error() string { return e.Message }

// Unwrap returns Err.
func (e *TokenError) Unwrap() error { return e.Err }

func tokenErrorf(reason Reason, cause error, format string, args ...any) *TokenError {
	return &TokenError{Reason: reason, Message: fmt.Sprintf(format, args...), Err: cause}
}
