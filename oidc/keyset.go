package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds the key set document we read from an issuer.
const maxJWKSBytes = 1 << 20

// fetchTimeout bounds one discovery or key set download, whatever the
// HTTP client's own timeout.
const fetchTimeout = 15 * time.Second

// minRSABits is the smallest RSA key signoff trusts.
const minRSABits = 2048

// keySet is the issuer's JSON Web Key Set, fetched from its jwks_uri and
// cached. It implements go-oidc's KeySet, and differs from go-oidc's
// RemoteKeySet in one way that matters at the edge: downloads are paced.
// A token naming an unknown kid triggers a refresh only if the last
// download started at least refreshInterval ago (retryInterval while no
// download has succeeded yet), so a client spraying random kids costs the
// issuer at most one request per interval. A key the issuer adds when it
// rotates is still picked up: by the first token that names it once the
// interval has passed. Keys are also refreshed when they are older than
// maxAge, so keys the issuer withdraws stop being trusted; if that refresh
// fails the cached keys stay in use.
//
// A token whose kid is cached but whose signature does not verify does not
// trigger a refresh: a key id names one key, and the signature is simply
// bad.
type keySet struct {
	issuer          string
	jwksURL         string
	client          *http.Client
	now             func() time.Time
	refreshInterval time.Duration
	retryInterval   time.Duration
	maxAge          time.Duration
	log             *slog.Logger

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time // last successful download; zero before the first
	attemptAt time.Time // start of the last download; zero before the first
	lastErr   error     // the last download's error, nil when it succeeded
	inflight  *keyFetch
}

// keyFetch is one download that several verifications may wait for.
type keyFetch struct {
	done chan struct{}
	err  error
}

// sigRecorderKey carries a *sigRecord through go-oidc's Verify into
// keySet.VerifySignature, so the verifier learns the typed reason for a
// signature failure (go-oidc flattens it into a string) and the verified
// payload.
type sigRecorderKey struct{}

type sigRecord struct {
	verified bool
	payload  []byte
	err      *TokenError
}

var _ gooidc.KeySet = (*keySet)(nil)

// VerifySignature parses jwt (compact serialization, one signature, an
// allowed algorithm), finds the issuer key its kid names, refreshing the
// cached keys if needed and allowed, and returns the verified payload. It
// checks nothing but the signature: go-oidc's verifier and
// RequesterVerifier check the claims.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, terr := k.verify(ctx, jwt)
	if rec, ok := ctx.Value(sigRecorderKey{}).(*sigRecord); ok {
		rec.verified, rec.payload, rec.err = terr == nil, payload, terr
	}
	if terr != nil {
		return nil, terr
	}
	return payload, nil
}

func (k *keySet) verify(ctx context.Context, jwt string) ([]byte, *TokenError) {
	jws, err := jose.ParseSignedCompact(jwt, allowedJOSEAlgs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, badAlgorithm(string(algErr.Got))
		}
		return nil, tokenErrorf(ReasonMalformed, err, "the token is not a valid signed JWT: %s", causeText(err))
	}
	if len(jws.Signatures) != 1 {
		return nil, tokenErrorf(ReasonMalformed, nil, "the token carries %d signatures; signoff accepts exactly one", len(jws.Signatures))
	}
	hdr := jws.Signatures[0].Header
	kid, alg := hdr.KeyID, hdr.Algorithm

	keys, terr := k.currentKeys(ctx)
	if terr != nil {
		return nil, terr
	}
	payload, found, verr := verifyWithKeys(jws, keys, kid, alg)
	if found && verr == nil {
		return payload, nil
	}
	if !found || kid == "" {
		// The kid is new to us (or absent): the issuer may have rotated.
		// refresh is paced; whatever it did, look at the newest keys.
		k.refresh(ctx)
		keys = k.snapshot()
		payload, found, verr = verifyWithKeys(jws, keys, kid, alg)
		if found && verr == nil {
			return payload, nil
		}
	}
	switch {
	case found && verr != nil && errors.Is(verr, errKeyAlgMismatch):
		return nil, tokenErrorf(ReasonBadAlgorithm, verr, "the token is signed with %s but issuer %s publishes key %s for another algorithm; the token was not issued by %s", alg, k.issuer, quote(kid), k.issuer)
	case found || kid == "":
		return nil, tokenErrorf(ReasonBadSignature, verr, "the token's signature does not verify with the keys issuer %s publishes: the token was altered or was not issued by %s; send the token exactly as the CI system issued it", k.issuer, k.issuer)
	default:
		if err := k.refreshError(); err != nil {
			return nil, tokenErrorf(ReasonUnknownKey, err, "the token was signed with key id %s, which issuer %s did not publish when its keys were last fetched, and fetching them again failed: %s; retry in %s", quote(kid), k.issuer, causeText(err), k.refreshInterval)
		}
		return nil, tokenErrorf(ReasonUnknownKey, nil, "the token was signed with key id %s, which issuer %s does not publish: the token was not issued by %s, or %s has just rotated its keys (signoff refreshes them at most every %s; retry then)", quote(kid), k.issuer, k.issuer, k.issuer, k.refreshInterval)
	}
}

var (
	errKeyAlgMismatch = errors.New("the published key is for another algorithm")
	errNoKey          = errors.New("no published key matches the token")
)

// verifyWithKeys tries the keys matching kid (every key when kid is
// empty). The signature verified if and only if found && err == nil.
// found reports whether a key matched kid (always false on failure when
// kid is empty, so that the caller may refresh).
func verifyWithKeys(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid, alg string) (payload []byte, found bool, err error) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		found = true
		if key.Algorithm != "" && key.Algorithm != alg {
			err = errKeyAlgMismatch
			continue
		}
		p, verr := jws.Verify(key.Key)
		if verr == nil {
			return p, true, nil
		}
		err = fmt.Errorf("verifying with key %q: %w", key.KeyID, verr)
	}
	if err == nil {
		err = errNoKey
	}
	if kid == "" {
		found = false
	}
	return nil, found, err
}

// refreshError is the last download's error, nil if it succeeded.
func (k *keySet) refreshError() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

func (k *keySet) snapshot() []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// currentKeys returns the cached keys, downloading them first when there
// are none yet or they are older than maxAge (and the pacing allows). It
// fails only when no download has ever succeeded.
func (k *keySet) currentKeys(ctx context.Context) ([]jose.JSONWebKey, *TokenError) {
	k.mu.Lock()
	never := k.fetchedAt.IsZero()
	stale := !never && k.now().Sub(k.fetchedAt) >= k.maxAge
	k.mu.Unlock()
	if never || stale {
		k.refresh(ctx)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fetchedAt.IsZero() {
		return nil, tokenErrorf(ReasonIssuerUnavailable, k.lastErr,
			"issuer %s is unreachable: its signing keys could not be fetched from %s: %s; requests from it are refused until it answers (signoff retries at most every %s)",
			k.issuer, k.jwksURL, causeText(k.lastErr), k.retryInterval)
	}
	return k.keys, nil
}

// refresh downloads the key set unless the last download started less than
// the pacing interval ago, joining a download already under way. Its
// outcome is recorded in k (and logged); callers look at k.keys afterwards.
func (k *keySet) refresh(ctx context.Context) {
	k.mu.Lock()
	f := k.inflight
	if f == nil {
		now := k.now()
		wait := k.refreshInterval
		if k.fetchedAt.IsZero() {
			wait = k.retryInterval
		}
		if !k.attemptAt.IsZero() && now.Before(k.attemptAt.Add(wait)) {
			k.mu.Unlock()
			k.log.Debug("signing key refresh skipped: too soon after the last one", "issuer", k.issuer, "last", k.attemptAt)
			return
		}
		f = &keyFetch{done: make(chan struct{})}
		k.inflight = f
		k.attemptAt = now
		// The download outlives a caller that gives up, so the next one
		// finds its result instead of starting over.
		go k.download(context.WithoutCancel(ctx), f)
	}
	k.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-f.done:
	}
}

func (k *keySet) download(ctx context.Context, f *keyFetch) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, err := fetchJWKS(ctx, k.client, k.jwksURL)
	k.mu.Lock()
	if err == nil {
		k.keys, k.fetchedAt, k.lastErr = keys, k.now(), nil
	} else {
		k.lastErr = err
	}
	k.inflight = nil
	k.mu.Unlock()
	if err != nil {
		k.log.Warn("fetching issuer signing keys failed", "issuer", k.issuer, "jwks_uri", k.jwksURL, "err", err)
	} else {
		k.log.Info("fetched issuer signing keys", "issuer", k.issuer, "jwks_uri", k.jwksURL, "kids", keyIDs(keys))
	}
	f.err = err
	close(f.done)
}

func keyIDs(keys []jose.JSONWebKey) []string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

// fetchJWKS downloads and parses a JSON Web Key Set, keeping only public
// signature keys of the types and algorithms signoff accepts. Keys it
// cannot use (other key types, encryption keys, unknown algorithms) are
// skipped, as RFC 7517 §5 asks, rather than failing the whole set.
func fetchJWKS(ctx context.Context, client *http.Client, url string) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("building key set request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching key set: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading key set: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching key set: HTTP %s", resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("key set is larger than %d bytes", maxJWKSBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && !slices.Contains(allowedAlgs, k.Algorithm) {
			continue
		}
		pub := k.Public() // drops private parts if an issuer leaked them; zero for symmetric keys
		switch key := pub.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < minRSABits {
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			continue
		}
		if !pub.Valid() {
			continue
		}
		keys = append(keys, pub)
	}
	return keys, nil
}
