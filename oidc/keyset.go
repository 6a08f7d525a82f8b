package oidc

import (
	"context"
	"errors"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/jwks"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// keySet is an issuer's signing keys as go-oidc's KeySet: it parses the
// token, has the shared key cache (internal/jwks: paced downloads, stale
// keys kept when a refresh fails) verify the signature, and turns a
// refusal into a *TokenError naming the issuer.
type keySet struct {
	issuer  string
	jwksURL string
	// refreshInterval and retryInterval are the cache's pacing, for
	// messages.
	refreshInterval time.Duration
	retryInterval   time.Duration
	keys            *jwks.Cache
}

// newKeySet returns the key set of issuer, published at opts.URL; opts'
// intervals must be set (not left to the cache's defaults), since the
// messages name them.
func newKeySet(issuer string, opts jwks.Options) *keySet {
	opts.Algorithms = idtoken.AllowedAlgs
	return &keySet{
		issuer:          issuer,
		jwksURL:         opts.URL,
		refreshInterval: opts.RefreshInterval,
		retryInterval:   opts.RetryInterval,
		keys:            jwks.New(opts),
	}
}

// nowClock adapts the Now option of oidc's verifiers to clock.Clock for the
// key cache, which only reads the time.
type nowClock func() time.Time

func (f nowClock) Now() time.Time { return f() }

func (f nowClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sigRecorderKey carries a *sigRecord through go-oidc's Verify into
// keySet.VerifySignature, so the verifier learns the typed reason for a
// signature failure (go-oidc flattens it into a string), the verified
// payload, and when the key that verified it was downloaded.
type sigRecorderKey struct{}

type sigRecord struct {
	verified    bool
	payload     []byte
	keysFetched time.Time
	err         *TokenError
}

var _ gooidc.KeySet = (*keySet)(nil)

// VerifySignature parses jwt (compact serialization, one signature, an
// allowed algorithm), finds the issuer key its kid names, refreshing the
// cached keys if needed and allowed, and returns the verified payload. It
// checks nothing but the signature: go-oidc's verifier and
// RequesterVerifier check the claims.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, fetched, terr := k.verify(ctx, jwt)
	if rec, ok := ctx.Value(sigRecorderKey{}).(*sigRecord); ok {
		rec.verified, rec.payload, rec.keysFetched, rec.err = terr == nil, payload, fetched, terr
	}
	if terr != nil {
		return nil, terr
	}
	return payload, nil
}

func (k *keySet) verify(ctx context.Context, jwt string) (payload []byte, keysFetched time.Time, _ *TokenError) {
	jws, err := jose.ParseSignedCompact(jwt, idtoken.AllowedJOSEAlgs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, time.Time{}, badAlgorithm(string(algErr.Got))
		}
		return nil, time.Time{}, tokenErrorf(ReasonMalformed, err, "the token is not a valid signed JWT: %s", idtoken.CauseText(err))
	}
	if len(jws.Signatures) != 1 {
		return nil, time.Time{}, tokenErrorf(ReasonMalformed, nil, "the token carries %d signatures; signoff accepts exactly one", len(jws.Signatures))
	}
	hdr := jws.Signatures[0].Header
	kid, alg := hdr.KeyID, hdr.Algorithm

	payload, key, err := k.keys.Verify(ctx, jws)
	if err == nil {
		return payload, key.FetchedAt, nil
	}
	var fetchErr *jwks.FetchError
	fetchFailed := errors.As(err, &fetchErr)
	switch {
	case errors.Is(err, jwks.ErrUnavailable):
		return nil, time.Time{}, k.unavailable(err)
	case errors.Is(err, jwks.ErrAlgorithmMismatch):
		return nil, time.Time{}, tokenErrorf(ReasonBadAlgorithm, err, "the token is signed with %s but issuer %s publishes key %s for another algorithm; the token was not issued by %s", alg, k.issuer, idtoken.Quote(kid), k.issuer)
	case errors.Is(err, jwks.ErrUnknownKey) && fetchFailed:
		return nil, time.Time{}, tokenErrorf(ReasonUnknownKey, fetchErr, "the token was signed with key id %s, which issuer %s did not publish when its keys were last fetched, and fetching them again failed: %s; retry in %s", idtoken.Quote(kid), k.issuer, idtoken.CauseText(fetchErr.Err), k.refreshInterval)
	case errors.Is(err, jwks.ErrUnknownKey):
		return nil, time.Time{}, tokenErrorf(ReasonUnknownKey, nil, "the token was signed with key id %s, which issuer %s does not publish: the token was not issued by %s, or %s has just rotated its keys (signoff refreshes them at most every %s; retry then)", idtoken.Quote(kid), k.issuer, k.issuer, k.issuer, k.refreshInterval)
	default:
		return nil, time.Time{}, tokenErrorf(ReasonBadSignature, err, "the token's signature does not verify with the keys issuer %s publishes: the token was altered or was not issued by %s; send the token exactly as the CI system issued it", k.issuer, k.issuer)
	}
}

// currentKeys returns the cached keys, downloading them first when there
// are none yet or they are older than the maximum age (and the pacing
// allows). It fails only when no download has ever succeeded.
func (k *keySet) currentKeys(ctx context.Context) ([]jwks.Key, *TokenError) {
	keys, err := k.keys.Keys(ctx)
	if err != nil {
		return nil, k.unavailable(err)
	}
	return keys, nil
}

// unavailable is the refusal while no download of the keys has succeeded.
func (k *keySet) unavailable(err error) *TokenError {
	cause := err
	var fetchErr *jwks.FetchError
	if errors.As(err, &fetchErr) {
		cause = fetchErr.Err
	}
	return tokenErrorf(ReasonIssuerUnavailable, err,
		"issuer %s is unreachable: its signing keys could not be fetched from %s: %s; requests from it are refused until it answers (signoff retries at most every %s)",
		k.issuer, k.jwksURL, idtoken.CauseText(cause), k.retryInterval)
}
