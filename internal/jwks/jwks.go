// Package jwks keeps a remote JSON Web Key Set: the one signing-key cache
// behind signoff's token verifiers (CI tokens and Security Event Tokens in
// oidc, the Bot Connector's tokens in bot/teamsbot).
//
// A Cache guarantees:
//   - Paced downloads. A token naming an unknown kid triggers a download
//     only if the last one started at least RefreshInterval ago
//     (RetryInterval while none has succeeded), so a sender spraying random
//     kids costs the key set's host at most one request per interval. A key
//     the issuer adds when it rotates is picked up by the first token that
//     names it once the interval has passed.
//   - One download at a time. Concurrent callers share it, and it outlives
//     a caller that gives up, so the next caller finds its result.
//   - Fresh keys, kept on failure. Keys older than MaxAge are fetched again
//     before use, so keys an issuer withdraws stop being trusted; if that
//     download fails, the cached keys stay in use.
//   - Only usable public keys. Keys for encryption, of a type or for an
//     algorithm the caller does not accept, and RSA keys under 2048 bits
//     are skipped (RFC 7517 §5), never the whole set; private parts an
//     issuer leaks are dropped.
//   - Endorsements, when the set lists them. The Bot Framework publishes
//     per key the channels it may sign for ("endorsements"); Key.Endorses
//     answers for a channel.
//
// A token whose kid is cached but whose signature does not verify does not
// trigger a download: a key id names one key, and the signature is bad.
package jwks

import (
	"cmp"
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
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/clock"
)

// Defaults for Options.
const (
	// DefaultRefreshInterval is the least time between two downloads
	// triggered by tokens naming unknown kids.
	DefaultRefreshInterval = time.Minute
	// DefaultRetryInterval replaces it while no download has succeeded.
	DefaultRetryInterval = 10 * time.Second
	// DefaultMaxAge is how long downloaded keys are used before they are
	// fetched again.
	DefaultMaxAge = time.Hour
	// DefaultFetchTimeout bounds one download (metadata and key set),
	// whatever the HTTP client's own timeout.
	DefaultFetchTimeout = 15 * time.Second
)

// MaxDocumentBytes bounds the metadata and key set documents read.
const MaxDocumentBytes = 1 << 20

// MinRSABits is the smallest RSA key kept.
const MinRSABits = 2048

// Errors of Cache.Keys and Cache.Verify, found with errors.Is. When a
// failed download is part of the answer, the error also wraps its
// *FetchError.
var (
	// ErrUnavailable: no download has succeeded yet, so nothing can be
	// verified.
	ErrUnavailable = errors.New("the signing keys have not been fetched")
	// ErrUnknownKey: no cached key has the token's kid, even after a
	// download (as far as the pacing allowed one).
	ErrUnknownKey = errors.New("no published key has the token's key id")
	// ErrAlgorithmMismatch: the key the kid names is published for
	// another algorithm than the token's.
	ErrAlgorithmMismatch = errors.New("the published key is for another algorithm")
	// ErrBadSignature: the signature does not verify with the published
	// key (with any of them when the token names no kid).
	ErrBadSignature = errors.New("the signature does not verify with the published keys")
)

// FetchError is a failed download of the key set, or of the OpenID
// metadata naming it. Find it with errors.As.
type FetchError struct {
	// URL is the document that could not be read.
	URL string
	// Err is why.
	Err error
}

func (e *FetchError) Error() string { return "fetching " + e.URL + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *FetchError) Unwrap() error { return e.Err }

// Key is one usable public key of the set.
type Key struct {
	jose.JSONWebKey
	// Endorsed is set when the key set lists endorsements for the key
	// (the Bot Framework's "endorsements" member); the key may then sign
	// only for the channels in Endorsements (none when it is empty).
	Endorsed     bool
	Endorsements []string
	// FetchedAt is set on the key Cache.Verify returns: when the set
	// holding it was downloaded (zero for a Static cache). The key is
	// trusted until MaxAge after it; whoever remembers what it verified
	// should forget that by then too.
	FetchedAt time.Time
}

// Endorses reports whether the key may sign for channel: always when the
// set lists no endorsements for it, else when they include channel
// (compared without regard to case).
func (k *Key) Endorses(channel string) bool {
	return !k.Endorsed || slices.ContainsFunc(k.Endorsements, func(e string) bool { return strings.EqualFold(e, channel) })
}

// Options configure a Cache. Exactly one of URL and MetadataURL is set, and
// Algorithms is required.
type Options struct {
	// URL is the key set's address (an issuer's jwks_uri, ssf.jwks_url).
	URL string
	// MetadataURL is an OpenID metadata document whose jwks_uri names the
	// key set (the Bot Connector's). It is read on every download, so a
	// key set that moves is followed. A jwks_uri must be an absolute
	// http(s) URL, and https when the metadata is.
	MetadataURL string
	// Algorithms are the JWS algorithms the caller accepts: keys published
	// for another, and keys of a type none of them uses, are skipped.
	Algorithms []string
	// HTTPClient downloads. Default: a client with a DefaultFetchTimeout
	// timeout.
	HTTPClient *http.Client
	// Clock paces downloads and ages keys. Default: the wall clock.
	Clock clock.Clock
	// RefreshInterval, RetryInterval, MaxAge and FetchTimeout: zero or
	// negative means the Default… value.
	RefreshInterval time.Duration
	RetryInterval   time.Duration
	MaxAge          time.Duration
	FetchTimeout    time.Duration
	// Logger receives downloads (URLs and key ids, nothing secret).
	// Default: discard.
	Logger *slog.Logger
}

// Cache is a remote key set, downloaded on first use and cached. It is
// safe for concurrent use.
type Cache struct {
	opts Options
	// static caches never download (Static).
	static bool

	mu        sync.Mutex
	keys      []Key
	fetchedAt time.Time // last successful download; zero before the first
	attemptAt time.Time // start of the last download; zero before the first
	lastErr   error     // the last download's error, nil when it succeeded
	inflight  *download
}

// download is one download that several callers may wait for.
type download struct {
	done chan struct{}
}

// New returns a Cache for opts. It does no network I/O.
func New(opts Options) *Cache {
	opts.HTTPClient = cmp.Or(opts.HTTPClient, &http.Client{Timeout: DefaultFetchTimeout})
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	opts.RefreshInterval = orDefault(opts.RefreshInterval, DefaultRefreshInterval)
	opts.RetryInterval = orDefault(opts.RetryInterval, DefaultRetryInterval)
	opts.MaxAge = orDefault(opts.MaxAge, DefaultMaxAge)
	opts.FetchTimeout = orDefault(opts.FetchTimeout, DefaultFetchTimeout)
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	return &Cache{opts: opts}
}

// Static returns a Cache holding keys that never downloads: for tests, and
// for keys known in advance.
func Static(keys ...Key) *Cache {
	return &Cache{opts: Options{Logger: slog.New(slog.DiscardHandler)}, static: true, keys: keys}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Keys returns the cached keys, downloading them first when none have been
// fetched yet or they are older than MaxAge (as far as the pacing allows).
// It fails only when no download has succeeded yet: then with an error
// wrapping ErrUnavailable and the download's *FetchError (or ctx's error
// when ctx ended first).
func (c *Cache) Keys(ctx context.Context) ([]Key, error) {
	keys, _, err := c.current(ctx)
	return keys, err
}

// current is Keys, with when they were downloaded.
func (c *Cache) current(ctx context.Context) ([]Key, time.Time, error) {
	if c.static {
		return c.keys, time.Time{}, nil
	}
	c.mu.Lock()
	stale := c.fetchedAt.IsZero() || c.opts.Clock.Now().Sub(c.fetchedAt) >= c.opts.MaxAge
	c.mu.Unlock()
	if stale {
		c.refresh(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetchedAt.IsZero() {
		return c.keys, c.fetchedAt, nil
	}
	cause := c.lastErr
	if err := ctx.Err(); err != nil {
		cause = err
	}
	if cause == nil {
		// Paced, and the download this caller did not start has not
		// failed yet: it is still under way for someone else.
		cause = errors.New("a download is under way")
	}
	return nil, time.Time{}, fmt.Errorf("jwks: %s: %w: %w", c.location(), ErrUnavailable, cause)
}

// Verify checks jws's one signature with the cached key its kid names
// (every cached key when it names none), downloading the set again when
// no cached key has the kid and the pacing allows. It returns the verified
// payload and the key that verified it. It checks nothing but the
// signature: not the claims, not the key's endorsements.
//
// A refusal wraps one of ErrUnavailable, ErrUnknownKey,
// ErrAlgorithmMismatch and ErrBadSignature, and the last download's
// *FetchError when that failed and matters (ErrUnavailable, ErrUnknownKey).
func (c *Cache) Verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, *Key, error) {
	if n := len(jws.Signatures); n != 1 {
		return nil, nil, fmt.Errorf("jwks: %w: the token carries %d signatures, not one", ErrBadSignature, n)
	}
	hdr := jws.Signatures[0].Header
	kid, alg := hdr.KeyID, hdr.Algorithm

	keys, fetchedAt, err := c.current(ctx)
	if err != nil {
		return nil, nil, err
	}
	payload, key, found, verr := verifyWith(jws, keys, kid, alg)
	if found && verr == nil {
		key.FetchedAt = fetchedAt
		return payload, key, nil
	}
	if !found {
		// The kid is new to us (or absent): the issuer may have rotated.
		// refresh is paced; whatever it did, look at the newest keys.
		c.refresh(ctx)
		keys, fetchedAt = c.snapshot()
		payload, key, found, verr = verifyWith(jws, keys, kid, alg)
		if found && verr == nil {
			key.FetchedAt = fetchedAt
			return payload, key, nil
		}
	}
	switch {
	case found && errors.Is(verr, ErrAlgorithmMismatch):
		return nil, nil, fmt.Errorf("jwks: key %q, token signed with %s: %w", kid, alg, verr)
	case found || kid == "":
		return nil, nil, fmt.Errorf("jwks: %w", verr)
	}
	if ferr := c.fetchError(); ferr != nil {
		return nil, nil, fmt.Errorf("jwks: key %q: %w, and fetching them again failed: %w", kid, ErrUnknownKey, ferr)
	}
	return nil, nil, fmt.Errorf("jwks: key %q: %w", kid, ErrUnknownKey)
}

// verifyWith tries the keys matching kid (every key published for alg
// when kid is empty). The signature verified if and only if found && err
// == nil. found reports whether a key matched kid (always false on failure
// when kid is empty, so that the caller may download again); without a
// kid a failure is always ErrBadSignature.
func verifyWith(jws *jose.JSONWebSignature, keys []Key, kid, alg string) (payload []byte, key *Key, found bool, err error) {
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		found = true
		if k.Algorithm != "" && k.Algorithm != alg {
			if kid != "" {
				err = fmt.Errorf("%w (%s)", ErrAlgorithmMismatch, k.Algorithm)
			}
			continue
		}
		p, verr := jws.Verify(k.Key)
		if verr == nil {
			return p, &k, true, nil
		}
		err = fmt.Errorf("%w: key %q: %w", ErrBadSignature, k.KeyID, verr)
	}
	if err == nil {
		err = fmt.Errorf("%w: no published key matches the token", ErrBadSignature)
	}
	if kid == "" {
		found = false
	}
	return nil, nil, found, err
}

// FetchedAt is when the keys c holds were downloaded: zero before the
// first successful download and for a Static cache. Every Key a
// download brought carries the same FetchedAt, so a caller that remembers
// what a key verified can tell, without any I/O, whether the set has been
// downloaded again since (and the key may be gone).
func (c *Cache) FetchedAt() time.Time {
	_, at := c.snapshot()
	return at
}

func (c *Cache) snapshot() ([]Key, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys, c.fetchedAt
}

// fetchError is the last download's error, nil if it succeeded.
func (c *Cache) fetchError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// location names where the keys come from, for errors and logs.
func (c *Cache) location() string {
	if c.opts.MetadataURL != "" {
		return c.opts.MetadataURL
	}
	return c.opts.URL
}

// refresh downloads the key set unless the last download started less than
// the pacing interval ago, joining a download already under way. It
// returns when that download is done or ctx ends; the outcome is recorded
// in c.
func (c *Cache) refresh(ctx context.Context) {
	if c.static {
		return
	}
	c.mu.Lock()
	d := c.inflight
	if d == nil {
		now := c.opts.Clock.Now()
		wait := c.opts.RefreshInterval
		if c.fetchedAt.IsZero() {
			wait = c.opts.RetryInterval
		}
		if !c.attemptAt.IsZero() && now.Before(c.attemptAt.Add(wait)) {
			c.mu.Unlock()
			c.opts.Logger.Debug("signing key download skipped: too soon after the last one", "from", c.location(), "last", c.attemptAt)
			return
		}
		d = &download{done: make(chan struct{})}
		c.inflight, c.attemptAt = d, now
		// The download outlives a caller that gives up, so the next one
		// finds its result instead of starting over.
		go c.download(context.WithoutCancel(ctx), d)
	}
	c.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-d.done:
	}
}

func (c *Cache) download(ctx context.Context, d *download) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	jwksURL, keys, err := c.fetch(ctx)
	c.mu.Lock()
	if err == nil {
		c.keys, c.fetchedAt, c.lastErr = keys, c.opts.Clock.Now(), nil
	} else {
		c.lastErr = err
	}
	c.inflight = nil
	c.mu.Unlock()
	log := c.opts.Logger
	switch {
	case err != nil:
		log.Warn("fetching signing keys failed", "from", c.location(), "err", err)
	case len(keys) == 0:
		log.Warn("the key set holds no usable signing key: no token can be verified", "jwks_uri", jwksURL)
	default:
		log.Info("fetched signing keys", "jwks_uri", jwksURL, "kids", keyIDs(keys))
	}
	close(d.done)
}

// fetch reads the metadata when configured, then the key set.
func (c *Cache) fetch(ctx context.Context) (string, []Key, error) {
	jwksURL := c.opts.URL
	if c.opts.MetadataURL != "" {
		u, err := discover(ctx, c.opts.HTTPClient, c.opts.MetadataURL)
		if err != nil {
			return "", nil, err
		}
		jwksURL = u
	}
	if jwksURL == "" {
		return "", nil, &FetchError{URL: "(none)", Err: errors.New("no key set URL configured")}
	}
	keys, err := Fetch(ctx, c.opts.HTTPClient, jwksURL, c.opts.Algorithms)
	return jwksURL, keys, err
}

func keyIDs(keys []Key) []string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

// discover reads the OpenID metadata at metadataURL and returns its
// jwks_uri: an absolute http(s) URL, https when the metadata is.
func discover(ctx context.Context, client *http.Client, metadataURL string) (string, error) {
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, metadataURL, "application/json", &meta); err != nil {
		return "", err
	}
	ju, err := url.Parse(meta.JWKSURI)
	if err != nil || (ju.Scheme != "https" && ju.Scheme != "http") || ju.Host == "" {
		return "", &FetchError{URL: metadataURL, Err: fmt.Errorf("jwks_uri %q is not an absolute http(s) URL", meta.JWKSURI)}
	}
	if mu, err := url.Parse(metadataURL); err == nil && mu.Scheme == "https" && ju.Scheme != "https" {
		return "", &FetchError{URL: metadataURL, Err: fmt.Errorf("jwks_uri %q downgrades to http", meta.JWKSURI)}
	}
	return meta.JWKSURI, nil
}

// Fetch downloads the key set at url once and returns its usable keys:
// public signature keys whose algorithm, when published, is one of algs,
// of a type one of algs uses (RSA of at least MinRSABits for RS… and
// PS…, EC for ES…, Ed25519 for EdDSA), with their endorsements. Keys it
// cannot use are skipped rather than failing the set (RFC 7517 §5), and
// so is a key whose endorsements are not a list of strings. A failure is
// a *FetchError.
func Fetch(ctx context.Context, client *http.Client, url string, algs []string) ([]Key, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, client, url, "application/json, application/jwk-set+json", &doc); err != nil {
		return nil, err
	}
	var keys []Key
	for _, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(raw, &jwk); err != nil {
			continue
		}
		if jwk.Use != "" && jwk.Use != "sig" {
			continue
		}
		if jwk.Algorithm != "" && !slices.Contains(algs, jwk.Algorithm) {
			continue
		}
		pub := jwk.Public() // drops private parts an issuer leaked; zero for symmetric keys
		if !pub.Valid() || !usableType(pub.Key, algs) {
			continue
		}
		var extra struct {
			Endorsements *[]string `json:"endorsements"`
		}
		if err := json.Unmarshal(raw, &extra); err != nil {
			continue // endorsements of the wrong type: do not guess
		}
		k := Key{JSONWebKey: pub}
		if extra.Endorsements != nil {
			k.Endorsed, k.Endorsements = true, *extra.Endorsements
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// usableType reports whether key can verify a signature by one of algs.
func usableType(key any, algs []string) bool {
	uses := func(prefixes ...string) bool {
		return slices.ContainsFunc(algs, func(a string) bool {
			return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(a, p) })
		})
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= MinRSABits && uses("RS", "PS")
	case *ecdsa.PublicKey:
		return uses("ES")
	case ed25519.PublicKey:
		return uses("EdDSA")
	default:
		return false
	}
}

// getJSON GETs url and decodes its JSON body (at most MaxDocumentBytes)
// into out. A failure is a *FetchError.
func getJSON(ctx context.Context, client *http.Client, url, accept string, out any) error {
	fail := func(format string, args ...any) error {
		return &FetchError{URL: url, Err: fmt.Errorf(format, args...)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail("building the request: %w", err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := client.Do(req)
	if err != nil {
		return &FetchError{URL: url, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return fail("reading: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail("HTTP %s", resp.Status)
	}
	if len(body) > MaxDocumentBytes {
		return fail("the document is larger than %d bytes", MaxDocumentBytes)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fail("decoding: %w", err)
	}
	return nil
}
