package teamsbot

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/jwks"
)

// Reasons an activity is refused, as written to callback.rejected
// records, besides chatflow's (RejectBadSignature, RejectBodyTooLarge,
// RejectUnreadableBody).
const (
	rejectMissingToken    chatflow.RejectReason = "missing_token"
	rejectMalformedToken  chatflow.RejectReason = "malformed_token"
	rejectBadAlgorithm    chatflow.RejectReason = "bad_algorithm"
	rejectUnknownKey      chatflow.RejectReason = "unknown_key"
	rejectWrongIssuer     chatflow.RejectReason = "wrong_issuer"
	rejectWrongAudience   chatflow.RejectReason = "wrong_audience"
	rejectExpired         chatflow.RejectReason = "expired_token"
	rejectNotYetValid     chatflow.RejectReason = "token_not_yet_valid"
	rejectNoServiceURL    chatflow.RejectReason = "missing_service_url_claim"
	rejectServiceURL      chatflow.RejectReason = "service_url_mismatch"
	rejectServiceURLHost  chatflow.RejectReason = "service_url_not_allowed"
	rejectNotEndorsed     chatflow.RejectReason = "channel_not_endorsed"
	rejectWrongChannel    chatflow.RejectReason = "wrong_channel"
	rejectKeysUnavailable chatflow.RejectReason = "keys_unavailable"
	rejectInvalidToken    chatflow.RejectReason = "invalid_token"
	rejectWrongTenant     chatflow.RejectReason = "wrong_tenant"
)

// Key set pacing (internal/jwks does the caching).
const (
	// keyRefreshInterval is the least time between two downloads of the
	// metadata and keys triggered by tokens naming an unknown kid.
	keyRefreshInterval = time.Minute
	// keyRetryInterval replaces it while no download has succeeded.
	keyRetryInterval = 10 * time.Second
	// keyMaxAge is how long downloaded keys are used before they are
	// fetched again (Microsoft rotates them, and withdrawn keys must stop
	// being trusted). A failed refresh keeps the cached keys.
	keyMaxAge = 24 * time.Hour
)

// allowedAlgs are the JWS algorithms the Bot Connector signs with (the Bot
// Framework SDKs accept the same three): never "none" or HMAC.
var allowedAlgs = []string{gooidc.RS256, gooidc.RS384, gooidc.RS512}

var allowedJOSEAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512}

// authError is an activity refused before its body was trusted. Reason is
// the stable code for the audit record, Status the HTTP answer.
type authError struct {
	Reason chatflow.RejectReason
	Detail string
	Status int
}

func (e *authError) Error() string { return "bot framework token: " + e.Detail }

func unauthorized(reason chatflow.RejectReason, format string, args ...any) *authError {
	return &authError{Reason: reason, Detail: fmt.Sprintf(format, args...), Status: http.StatusUnauthorized}
}

// keySet is the Bot Connector's signing keys as go-oidc's KeySet: found
// through the configured OpenID metadata document (its jwks_uri) and kept
// by the shared key cache (internal/jwks), whose downloads are paced: a
// token naming an unknown kid triggers one only if the last started at
// least keyRefreshInterval ago (keyRetryInterval while none has
// succeeded), so a sender spraying random kids costs Microsoft at most one
// request a minute. Keys older than keyMaxAge are fetched again before
// use; if that fails, the cached keys stay in use.
type keySet struct {
	metadataURL string
	keys        *jwks.Cache
}

func newKeySet(metadataURL string, client *http.Client, clk clock.Clock, log *slog.Logger) *keySet {
	return &keySet{metadataURL: metadataURL, keys: jwks.New(jwks.Options{
		MetadataURL:     metadataURL,
		Algorithms:      allowedAlgs,
		HTTPClient:      client,
		Clock:           clk,
		RefreshInterval: keyRefreshInterval,
		RetryInterval:   keyRetryInterval,
		MaxAge:          keyMaxAge,
		FetchTimeout:    DefaultCallTimeout,
		Logger:          log,
	})}
}

var _ gooidc.KeySet = (*keySet)(nil)

// sigRecorderKey carries a *sigRecord through go-oidc's Verify into
// VerifySignature: the verifier learns which key verified the token (for
// its endorsements) and the typed reason of a failure.
type sigRecorderKey struct{}

type sigRecord struct {
	verified bool
	payload  []byte
	key      *jwks.Key
	err      *authError
}

// VerifySignature parses jwt (compact, one signature, RS256/384/512, a
// kid), finds the key its kid names (refreshing the cached keys if needed
// and allowed) and returns the verified payload. It checks nothing else;
// the claims are tokenVerifier's.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, key, aerr := k.verify(ctx, jwt)
	if rec, ok := ctx.Value(sigRecorderKey{}).(*sigRecord); ok {
		rec.verified, rec.payload, rec.key, rec.err = aerr == nil, payload, key, aerr
	}
	if aerr != nil {
		return nil, aerr
	}
	return payload, nil
}

func (k *keySet) verify(ctx context.Context, jwt string) ([]byte, *jwks.Key, *authError) {
	jws, err := jose.ParseSignedCompact(jwt, allowedJOSEAlgs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, nil, unauthorized(rejectBadAlgorithm, "the token is signed with %q; only %s are accepted", algErr.Got, strings.Join(allowedAlgs, ", "))
		}
		return nil, nil, unauthorized(rejectMalformedToken, "the token is not a signed JWT")
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, unauthorized(rejectMalformedToken, "the token carries %d signatures; exactly one is accepted", len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID
	alg := jws.Signatures[0].Header.Algorithm
	if kid == "" {
		return nil, nil, unauthorized(rejectMalformedToken, "the token names no signing key (kid)")
	}
	payload, key, err := k.keys.Verify(ctx, jws)
	switch {
	case err == nil:
		return payload, key, nil
	case errors.Is(err, jwks.ErrUnavailable):
		return nil, nil, k.unavailable(err)
	case errors.Is(err, jwks.ErrUnknownKey):
		return nil, nil, unauthorized(rejectUnknownKey, "the token is signed with key %q, which the OpenID metadata's key set does not list", kid)
	case errors.Is(err, jwks.ErrAlgorithmMismatch):
		return nil, nil, unauthorized(rejectBadAlgorithm, "the token is signed with %s but key %q is published for another algorithm", alg, kid)
	default:
		return nil, nil, unauthorized(chatflow.RejectBadSignature, "the token's signature does not verify with key %q", kid)
	}
}

// unavailable is the refusal while no download of the keys has succeeded.
func (k *keySet) unavailable(err error) *authError {
	var fetchErr *jwks.FetchError
	if errors.As(err, &fetchErr) {
		err = fetchErr
	}
	return unauthorized(rejectKeysUnavailable, "the Bot Framework signing keys could not be fetched from %s, so no token can be verified: %v", k.metadataURL, err)
}

// prefetch downloads the keys unless they are cached and fresh.
func (k *keySet) prefetch(ctx context.Context) error {
	if _, err := k.keys.Keys(ctx); err != nil {
		return fmt.Errorf("the Bot Framework signing keys could not be fetched from %s: %w", k.metadataURL, err)
	}
	return nil
}

// botToken is a verified Bot Connector token.
type botToken struct {
	// serviceURL is the serviceurl (or serviceUrl) claim.
	serviceURL string
	// key is the key that signed it.
	key *jwks.Key
}

// tokenVerifier checks the bearer tokens the Bot Connector sends: a
// compact JWS by RS256/384/512 with a key from the configured metadata,
// iss exactly the channel service's issuer, aud containing the app id, exp
// present and at most MaxSkew past, nbf at most MaxSkew ahead, and a
// non-empty serviceurl claim. The checks that need the activity (the
// serviceUrl and the key's endorsements) are checkActivity's.
//
// It does NOT prevent replay: a token may be presented until it expires.
// The invoke cache keeps a replayed click from counting twice, and
// approvals counts one vote per person anyway.
type tokenVerifier struct {
	keys     *keySet
	issuer   string
	appID    string
	clock    clock.Clock
	skew     time.Duration
	verifier *gooidc.IDTokenVerifier
}

func newTokenVerifier(keys *keySet, issuer, appID string, clk clock.Clock, skew time.Duration) *tokenVerifier {
	v := &tokenVerifier{keys: keys, issuer: issuer, appID: appID, clock: clk, skew: skew}
	// go-oidc checks exp and nbf against one clock (nbf with a fixed five
	// minutes of its own): no clock it could be shown gives both our
	// leeway, so checkClaims checks them, precisely, and go-oidc not at all.
	v.verifier = gooidc.NewVerifier(issuer, keys, &gooidc.Config{
		ClientID:             appID,
		SupportedSigningAlgs: allowedAlgs,
		SkipExpiryCheck:      true,
	})
	return v
}

// verify checks the Authorization header's bearer token.
func (v *tokenVerifier) verify(ctx context.Context, header string) (*botToken, *authError) {
	scheme, raw, ok := strings.Cut(strings.TrimSpace(header), " ")
	raw = strings.TrimSpace(raw)
	if header == "" {
		return nil, unauthorized(rejectMissingToken, "the request has no Authorization header")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, unauthorized(rejectMissingToken, "the Authorization header is not a bearer token")
	}
	rec := &sigRecord{}
	_, verr := v.verifier.Verify(context.WithValue(ctx, sigRecorderKey{}, rec), raw)
	switch {
	case rec.err != nil:
		return nil, rec.err
	case !rec.verified && verr != nil:
		// go-oidc refused the token before asking for its signature:
		// name the claim it objected to.
		return nil, v.classify(raw, verr)
	case !rec.verified:
		return nil, unauthorized(rejectInvalidToken, "the token's signature was not checked; refusing it")
	}
	tok, aerr := v.checkClaims(rec.payload)
	if aerr != nil {
		return nil, aerr
	}
	if verr != nil {
		return nil, unauthorized(rejectInvalidToken, "the token was refused: %v", verr)
	}
	tok.key = rec.key
	return tok, nil
}

// classify names why go-oidc refused an unverified token, from its
// (untrusted) claims; it only chooses the reason code.
func (v *tokenVerifier) classify(raw string, verr error) *authError {
	var expired *gooidc.TokenExpiredError
	if errors.As(verr, &expired) {
		return unauthorized(rejectExpired, "the token expired at %s (allowed clock skew %s)", expired.Expiry.UTC().Format(time.RFC3339), v.skew)
	}
	parts := strings.Split(raw, ".")
	if len(parts) == 3 {
		if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			if _, aerr := v.checkClaims(payload); aerr != nil {
				return aerr
			}
		}
		if hdr, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
			var h struct {
				Alg string `json:"alg"`
			}
			if json.Unmarshal(hdr, &h) == nil && !slices.Contains(allowedAlgs, h.Alg) {
				return unauthorized(rejectBadAlgorithm, "the token is signed with %q; only %s are accepted", h.Alg, strings.Join(allowedAlgs, ", "))
			}
		}
	}
	return unauthorized(rejectMalformedToken, "the token is not a valid Bot Framework token")
}

// checkClaims checks iss, aud, exp, nbf and the serviceurl claim.
func (v *tokenVerifier) checkClaims(payload []byte) (*botToken, *authError) {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, unauthorized(rejectMalformedToken, "the token's claims are not a JSON object")
	}
	if iss, _ := m["iss"].(string); iss != v.issuer {
		return nil, unauthorized(rejectWrongIssuer, "the token's issuer is %q, not %q", iss, v.issuer)
	}
	if !audienceContains(m["aud"], v.appID) {
		return nil, unauthorized(rejectWrongAudience, "the token was not issued for this bot (audience %v, app id %q)", m["aud"], v.appID)
	}
	now := v.clock.Now()
	exp, ok := numericDate(m["exp"])
	if !ok {
		return nil, unauthorized(rejectMalformedToken, "the token has no valid exp claim")
	}
	if now.After(exp.Add(v.skew)) {
		return nil, unauthorized(rejectExpired, "the token expired at %s (allowed clock skew %s)", exp.UTC().Format(time.RFC3339), v.skew)
	}
	if raw, present := m["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return nil, unauthorized(rejectMalformedToken, "the token's nbf claim is not a number")
		}
		if nbf.After(now.Add(v.skew)) {
			return nil, unauthorized(rejectNotYetValid, "the token is not valid before %s (allowed clock skew %s)", nbf.UTC().Format(time.RFC3339), v.skew)
		}
	}
	su, _ := m["serviceurl"].(string)
	if su == "" {
		su, _ = m["serviceUrl"].(string)
	}
	if su == "" {
		return nil, unauthorized(rejectNoServiceURL, "the token has no serviceurl claim")
	}
	return &botToken{serviceURL: su}, nil
}

func audienceContains(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, _ := x.(string); s == want {
				return true
			}
		}
	}
	return false
}

func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || f <= 0 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// teamsChannel is the channelId of every activity from Microsoft Teams.
const teamsChannel = "msteams"

// checkActivity checks what ties the verified token to this activity: the
// serviceurl claim must equal the activity's serviceUrl, the activity must
// come from Teams (on other Bot Framework channels, such as Web Chat and
// Direct Line, the client writes from and channelData itself), and when
// the signing key lists endorsements, they must include that channel.
func (t *botToken) checkActivity(serviceURL, channelID string) *authError {
	if channelID != teamsChannel {
		return unauthorized(rejectWrongChannel, "the activity comes from channel %q, not %q: signoff serves Microsoft Teams only", channelID, teamsChannel)
	}
	if t.serviceURL != serviceURL {
		return unauthorized(rejectServiceURL, "the token's serviceurl claim %q does not match the activity's serviceUrl %q", t.serviceURL, serviceURL)
	}
	if t.key != nil && !t.key.Endorses(channelID) {
		return unauthorized(rejectNotEndorsed, "the signing key %q is not endorsed for channel %q", t.key.KeyID, channelID)
	}
	return nil
}
