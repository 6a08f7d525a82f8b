package oidc

// Security Event Tokens (RFC 8417) pushed by a Shared Signals transmitter.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/jwks"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// DefaultSETMaxAge is how old (by iat) a Security Event Token may be when
// it arrives. Transmitters retry a delivery that failed (signoff down, a
// network cut) with the token they signed at first, so the bound is long
// enough to ride out an outage of a working day; the token's jti is
// remembered for as long, so a replay within the window is refused.
const DefaultSETMaxAge = 24 * time.Hour

// MaxSETBytes bounds the compact serialization of a SET signoff parses at
// all; SETs are a few KiB.
const MaxSETBytes = 64 << 10

// maxJTIBytes bounds the jti signoff stores to refuse replays.
const maxJTIBytes = 256

// SETCode is the error code of a refused SET, the "err" member of the
// answer to a push (RFC 8935 §2.4): one of the SETErr… constants the
// verifier decides, or one the receiver decides itself (declared there
// with this type). The values go on the wire as they are. Nothing
// recognises a refusal by its message.
type SETCode string

// Error codes of a refused SET, as RFC 8935 §2.4 registers them.
const (
	// SETErrInvalidRequest: the body is not a SET signoff can parse, a
	// claim it needs is missing or out of range, or it was delivered
	// before (replayed jti).
	SETErrInvalidRequest SETCode = "invalid_request"
	// SETErrInvalidKey: the signature does not verify, names a key the
	// transmitter does not publish, or uses an algorithm signoff refuses.
	SETErrInvalidKey SETCode = "invalid_key"
	// SETErrInvalidIssuer: iss is not ssf.issuer.
	SETErrInvalidIssuer SETCode = "invalid_issuer"
	// SETErrInvalidAudience: aud does not contain ssf.audience.
	SETErrInvalidAudience SETCode = "invalid_audience"
)

// SETReason is why a SET was refused, finer than its SETCode: one of the
// SETReason… constants, or one the receiver declares for the refusals it
// decides itself. The values are stable: /metrics counts refusals by
// them.
type SETReason string

// Reasons a SET is refused by the verifier.
const (
	SETReasonMalformed         SETReason = "malformed"
	SETReasonWrongType         SETReason = "wrong_type"
	SETReasonUnsupportedHeader SETReason = "unsupported_header"
	SETReasonBadAlgorithm      SETReason = "bad_algorithm"
	SETReasonBadSignature      SETReason = "bad_signature"
	SETReasonUnknownKey        SETReason = "unknown_key"
	SETReasonKeysUnavailable   SETReason = "keys_unavailable"
	SETReasonWrongIssuer       SETReason = "wrong_issuer"
	SETReasonWrongAudience     SETReason = "wrong_audience"
	SETReasonMissingIAT        SETReason = "missing_iat"
	SETReasonIATInFuture       SETReason = "iat_in_future"
	SETReasonIATTooOld         SETReason = "iat_too_old"
	SETReasonMissingJTI        SETReason = "missing_jti"
	SETReasonNoEvents          SETReason = "no_events"
)

// SETError is why a SET was refused. Message is meant for the transmitter's
// operators (it goes into the answer's "description") and never contains
// the token; it may quote claim values such as iss, aud or kid.
type SETError struct {
	// Code is one of the SETErr… codes.
	Code SETCode
	// Reason is one of the SETReason… constants.
	Reason SETReason
	// Message says what is wrong, for the transmitter's operators.
	Message string
	// Temporary is set when the SET could not be checked right now (the
	// transmitter's keys cannot be fetched): the fault is not the SET's, and
	// the transmitter should deliver it again later.
	Temporary bool
	// Err is the underlying cause, if any.
	Err error
}

// Error returns Message.
func (e *SETError) Error() string { return e.Message }

// Unwrap returns Err.
func (e *SETError) Unwrap() error { return e.Err }

func setErrorf(code SETCode, reason SETReason, cause error, format string, args ...any) *SETError {
	return &SETError{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...), Err: cause}
}

// SET is a verified Security Event Token. Its events are not interpreted
// here: their meaning belongs to the receiver.
type SET struct {
	// Issuer is iss, the configured transmitter issuer.
	Issuer string
	// Audience is aud (one value or several).
	Audience []string
	// ID is jti: unique per issuer, the key of replay protection.
	ID string
	// IssuedAt is iat.
	IssuedAt time.Time
	// AcceptUntil is the last moment Verify would accept this SET (by its
	// iat and the allowed age and clock skew): its ID must be remembered
	// until then to refuse a replay.
	AcceptUntil time.Time
	// TXN is the optional txn claim (the transmitter's id of the
	// underlying event, shared by related SETs).
	TXN string
	// TOE is the optional toe claim (time of event); zero when absent.
	TOE time.Time
	// SubID is the raw sub_id claim (RFC 9493 subject identifier, SSF 1.0);
	// nil when absent.
	SubID json.RawMessage
	// Events maps each event type URI to its raw event object (RFC 8417
	// "events"); never empty.
	Events map[string]json.RawMessage
}

// SETVerifierOptions configure a SETVerifier.
type SETVerifierOptions struct {
	// Issuer is the transmitter's issuer: a SET's iss must equal it
	// exactly (ssf.issuer).
	Issuer string
	// JWKSURL is where the transmitter publishes its signing keys
	// (ssf.jwks_url): https, or http on a loopback address.
	JWKSURL string
	// Audience must be one of a SET's aud values (ssf.audience).
	Audience string
	// HTTPClient downloads the keys. Default: a client with a 15-second
	// timeout.
	HTTPClient *http.Client
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// MaxSkew is how far in the future iat may be. Zero means
	// DefaultMaxSkew; at most MaxSkewLimit.
	MaxSkew time.Duration
	// MaxAge is how old (by iat) a SET may be. Zero means
	// DefaultSETMaxAge.
	MaxAge time.Duration
	// KeyRefreshInterval is the minimum time between two key set
	// downloads caused by SETs naming unknown kids; zero means
	// DefaultKeyRefreshInterval. KeyMaxAge is how long downloaded keys are
	// used before they are fetched again; zero means DefaultKeyMaxAge.
	KeyRefreshInterval time.Duration
	KeyMaxAge          time.Duration
	// Logger receives key set events (never tokens). Default: discard.
	Logger *slog.Logger
}

// SETVerifier verifies Security Event Tokens from one transmitter. It is
// safe for concurrent use.
//
// A SET is accepted only if: it is a compact JWS (not encrypted) with one
// signature by RS256, ES256, PS256 or EdDSA (never none or HMAC) that
// verifies with a key the transmitter publishes at JWKSURL (found by kid;
// unknown kids refresh the keys at most every KeyRefreshInterval); its
// header's typ, when present, is secevent+jwt (RFC 8417 §2.3) and it
// carries no crit parameter; iss equals Issuer; aud contains Audience; iat
// is present, at most MaxSkew in the future and at most MaxAge in the past;
// jti is a non-empty string; and events is a non-empty object of objects.
// sub and exp, which SSF 1.0 says a SET must not carry, are ignored rather
// than refused (some transmitters send them, and no other kind of token
// passes the checks above). Replay (a jti seen before) is the caller's to
// refuse, with SET.AcceptUntil.
type SETVerifier struct {
	opts SETVerifierOptions
	keys *keySet
}

// NewSETVerifier checks opts and returns a verifier. It does no network
// I/O: the keys are fetched on the first SET.
func NewSETVerifier(opts SETVerifierOptions) (*SETVerifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("oidc: SET verifier: no issuer (ssf.issuer)")
	}
	if opts.Audience == "" {
		return nil, errors.New("oidc: SET verifier: no audience (ssf.audience)")
	}
	if err := checkKeySetURL(opts.JWKSURL); err != nil {
		return nil, fmt.Errorf("oidc: SET verifier: %w", err)
	}
	if err := checkMaxSkew(opts.MaxSkew); err != nil {
		return nil, fmt.Errorf("oidc: SET verifier: %w", err)
	}
	if opts.MaxAge < 0 || opts.KeyRefreshInterval < 0 || opts.KeyMaxAge < 0 {
		return nil, errors.New("oidc: SET verifier: MaxAge, KeyRefreshInterval and KeyMaxAge must not be negative")
	}
	opts.HTTPClient = cmp.Or(opts.HTTPClient, &http.Client{Timeout: idtoken.FetchTimeout})
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	opts.MaxSkew = orDefault(opts.MaxSkew, DefaultMaxSkew)
	opts.MaxAge = orDefault(opts.MaxAge, DefaultSETMaxAge)
	opts.KeyRefreshInterval = orDefault(opts.KeyRefreshInterval, DefaultKeyRefreshInterval)
	opts.KeyMaxAge = orDefault(opts.KeyMaxAge, DefaultKeyMaxAge)
	return &SETVerifier{
		opts: opts,
		keys: newKeySet(opts.Issuer, jwks.Options{
			URL:             opts.JWKSURL,
			HTTPClient:      opts.HTTPClient,
			Clock:           nowClock(opts.Now),
			RefreshInterval: opts.KeyRefreshInterval,
			RetryInterval:   DefaultDiscoveryRetry,
			MaxAge:          opts.KeyMaxAge,
			FetchTimeout:    idtoken.FetchTimeout,
			Logger:          opts.Logger.With("issuer", opts.Issuer),
		}),
	}, nil
}

// checkKeySetURL accepts an absolute https URL, or http on a loopback host.
func checkKeySetURL(s string) error {
	if s == "" {
		return errors.New("no key set URL (ssf.jwks_url)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("key set URL %q must be an absolute URL with a host and no user info", s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && hostlist.IsLoopback(u.Hostname()):
	default:
		return fmt.Errorf("key set URL %q must use https (http only on a loopback address)", s)
	}
	return nil
}

// MaxAge returns how old a SET may be when it arrives.
func (v *SETVerifier) MaxAge() time.Duration { return v.opts.MaxAge }

// Issuer returns the transmitter issuer SETs must name.
func (v *SETVerifier) Issuer() string { return v.opts.Issuer }

// Discover fetches the transmitter's keys now (they are otherwise fetched
// on the first SET), so that a wrong ssf.jwks_url shows in the log at
// start.
func (v *SETVerifier) Discover(ctx context.Context) error {
	if _, terr := v.keys.currentKeys(ctx); terr != nil {
		return terr
	}
	return nil
}

// Verify verifies raw, the compact serialization of a SET. Every refusal is
// a *SETError, except when ctx ends while the keys are being fetched (then
// ctx's error, wrapped).
func (v *SETVerifier) Verify(ctx context.Context, raw string) (*SET, error) {
	const what = "push the SET itself as the request body (RFC 8935), in compact serialization"
	if raw == "" {
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, nil, "the request body is empty: %s", what)
	}
	if len(raw) > MaxSETBytes {
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, nil, "the SET is %d bytes; signoff accepts at most %d", len(raw), MaxSETBytes)
	}
	parts := strings.Split(raw, ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, nil, "the SET is encrypted (JWE); signoff accepts only signed SETs")
	default:
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, nil, "the body is not a JWT (a signed SET is three base64url parts joined by dots; this has %d): %s", len(parts), what)
	}
	if serr := checkSETHeader(parts[0]); serr != nil {
		return nil, serr
	}

	payload, err := v.keys.VerifySignature(ctx, raw)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("oidc: verifying SET: %w", ctx.Err())
		}
		return nil, v.signatureError(err)
	}
	return v.checkClaims(payload)
}

// checkSETHeader refuses, before any key is fetched, a header that is not
// JSON, names an algorithm signoff never accepts, has another typ than a
// SET's, or asks for extensions (crit) signoff does not implement.
func checkSETHeader(seg string) *SETError {
	b, err := decodeSegment(seg)
	if err != nil {
		return setErrorf(SETErrInvalidRequest, SETReasonMalformed, err, "the SET's header is not base64url-encoded JSON")
	}
	// A map, not a struct: encoding/json matches struct fields
	// case-insensitively, go-jose reads header keys exactly.
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil || h == nil {
		return setErrorf(SETErrInvalidRequest, SETReasonMalformed, err, "the SET's header is not a JSON object")
	}
	var alg string
	if err := json.Unmarshal(h["alg"], &alg); err != nil || alg == "" {
		return setErrorf(SETErrInvalidRequest, SETReasonMalformed, err, "the SET's header has no alg, or it is not a string")
	}
	if !slices.Contains(idtoken.AllowedAlgs, alg) {
		return setErrorf(SETErrInvalidKey, SETReasonBadAlgorithm, nil, "the SET is signed with alg %s; signoff accepts only %s (never none or HMAC)", idtoken.Quote(alg), strings.Join(idtoken.AllowedAlgs, ", "))
	}
	if raw, ok := h["typ"]; ok {
		var typ string
		if err := json.Unmarshal(raw, &typ); err != nil {
			return setErrorf(SETErrInvalidRequest, SETReasonWrongType, err, "the SET's typ header is not a string")
		}
		// RFC 7515 §4.1.9: the media type, with or without "application/",
		// compared without regard to case.
		if !strings.EqualFold(typ, "secevent+jwt") && !strings.EqualFold(typ, "application/secevent+jwt") {
			return setErrorf(SETErrInvalidRequest, SETReasonWrongType, nil, "the token's typ is %s, not secevent+jwt: it is not a Security Event Token (RFC 8417 §2.3)", idtoken.Quote(typ))
		}
	}
	if name := jwsExtension(h); name != "" {
		return setErrorf(SETErrInvalidRequest, SETReasonUnsupportedHeader, nil, "the SET's header carries %s, a JWS extension signoff does not implement", name)
	}
	return nil
}

// signatureError turns the key set's refusal into a SETError.
func (v *SETVerifier) signatureError(err error) *SETError {
	var terr *TokenError
	if !errors.As(err, &terr) {
		return setErrorf(SETErrInvalidKey, SETReasonBadSignature, err, "the SET's signature could not be verified")
	}
	switch terr.Reason {
	case ReasonMalformed:
		return setErrorf(SETErrInvalidRequest, SETReasonMalformed, terr, "the body is not a valid signed JWT: %s", idtoken.CauseText(terr.Err))
	case ReasonBadAlgorithm:
		return setErrorf(SETErrInvalidKey, SETReasonBadAlgorithm, terr, "%s", terr.Message)
	case ReasonIssuerUnavailable:
		e := setErrorf(SETErrInvalidKey, SETReasonKeysUnavailable, terr, "signoff cannot fetch the transmitter's keys from %s right now; deliver the SET again later", v.opts.JWKSURL)
		e.Temporary = true
		return e
	case ReasonUnknownKey:
		if terr.Err != nil {
			e := setErrorf(SETErrInvalidKey, SETReasonKeysUnavailable, terr, "the SET names a key id signoff has not seen, and fetching the transmitter's keys from %s failed; deliver the SET again later", v.opts.JWKSURL)
			e.Temporary = true
			return e
		}
		return setErrorf(SETErrInvalidKey, SETReasonUnknownKey, terr, "the SET's key id is not among the keys published at %s (ssf.jwks_url): it was not signed by the configured transmitter, or the transmitter has just rotated its keys (signoff fetches them again at most every %s)", v.opts.JWKSURL, v.opts.KeyRefreshInterval)
	default:
		return setErrorf(SETErrInvalidKey, SETReasonBadSignature, terr, "the SET's signature does not verify with the keys published at %s (ssf.jwks_url): it was altered or not signed by the configured transmitter", v.opts.JWKSURL)
	}
}

// checkClaims checks the verified claims of a SET.
func (v *SETVerifier) checkClaims(payload []byte) (*SET, error) {
	m, err := idtoken.Decode(payload)
	if err != nil {
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, err, "the SET's claims are not a JSON object: %s", idtoken.CauseText(err))
	}
	iss, _ := m["iss"].(string)
	if iss != v.opts.Issuer {
		return nil, setErrorf(SETErrInvalidIssuer, SETReasonWrongIssuer, nil, "the SET's iss is %s; this receiver accepts SETs only from %s (ssf.issuer)", idtoken.Quote(iss), idtoken.Quote(v.opts.Issuer))
	}
	aud, err := audienceOf(m["aud"])
	if err != nil {
		return nil, setErrorf(SETErrInvalidAudience, SETReasonWrongAudience, err, "the SET's aud is neither a string nor a list of strings")
	}
	if !slices.Contains(aud, v.opts.Audience) {
		return nil, setErrorf(SETErrInvalidAudience, SETReasonWrongAudience, nil, "the SET's audience is %s; this receiver is %s (ssf.audience)", quoteList(aud), idtoken.Quote(v.opts.Audience))
	}

	now := v.opts.Now()
	iat, ok, err := idtoken.NumericDate(m, "iat")
	switch {
	case err != nil:
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, err, "the SET's %s", idtoken.CauseText(err))
	case !ok:
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMissingIAT, nil, "the SET has no iat (issued at) claim")
	case iat.After(now.Add(v.opts.MaxSkew)):
		return nil, setErrorf(SETErrInvalidRequest, SETReasonIATInFuture, nil, "the SET claims to be issued at %s, in the future (now %s, allowed clock skew %s): check the clocks of the transmitter and signoff", idtoken.FormatTime(iat), idtoken.FormatTime(now), v.opts.MaxSkew)
	case now.Sub(iat) > v.opts.MaxAge:
		return nil, setErrorf(SETErrInvalidRequest, SETReasonIATTooOld, nil, "the SET was issued at %s, more than %s ago (now %s): signoff refuses older SETs, whose jti it no longer remembers", idtoken.FormatTime(iat), v.opts.MaxAge, idtoken.FormatTime(now))
	}

	jti, _ := m["jti"].(string)
	switch {
	case jti == "":
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMissingJTI, nil, "the SET has no jti claim (a non-empty string), which signoff needs to refuse replays")
	case len(jti) > maxJTIBytes:
		return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, nil, "the SET's jti is %d bytes; signoff accepts at most %d", len(jti), maxJTIBytes)
	}

	set := &SET{
		Issuer:      iss,
		Audience:    aud,
		ID:          jti,
		IssuedAt:    iat,
		AcceptUntil: iat.Add(v.opts.MaxAge + v.opts.MaxSkew),
	}
	if txn, ok := m["txn"].(string); ok {
		set.TXN = txn
	}
	if toe, ok, err := idtoken.NumericDate(m, "toe"); err == nil && ok {
		set.TOE = toe
	}

	// The events and the subject are handed on as JSON, re-encoded from the
	// claims decoded above (so that what the receiver reads is exactly what
	// was checked here), for the receiver to decode with its own types.
	events, ok := m["events"].(map[string]any)
	if !ok || len(events) == 0 {
		return nil, setErrorf(SETErrInvalidRequest, SETReasonNoEvents, nil, "the SET has no events claim (a non-empty JSON object mapping event type URIs to events)")
	}
	set.Events = make(map[string]json.RawMessage, len(events))
	for typ, ev := range events {
		obj, ok := ev.(map[string]any)
		if !ok {
			return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, nil, "the SET's event %s is not a JSON object", idtoken.Quote(typ))
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, err, "the SET's event %s cannot be encoded", idtoken.Quote(typ))
		}
		set.Events[typ] = b
	}
	if sub, present := m["sub_id"]; present {
		obj, ok := sub.(map[string]any)
		if !ok {
			return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, nil, "the SET's sub_id is not a JSON object (an RFC 9493 subject identifier)")
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, setErrorf(SETErrInvalidRequest, SETReasonMalformed, err, "the SET's sub_id cannot be encoded")
		}
		set.SubID = b
	}
	return set, nil
}
