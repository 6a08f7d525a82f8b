package oidc

import (
	"crypto/sha256"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/internal/jwks"
)

// DefaultTokenCacheSize is how many verified tokens a RequesterVerifier
// remembers when VerifierOptions.TokenCacheSize is zero.
const DefaultTokenCacheSize = 1024

// tokenCache remembers tokens a RequesterVerifier accepted, so a CI job
// that presents the same token again (a create, then polls) does not pay
// for a signature check each time. It is safe for concurrent use.
//
// What it guarantees:
//   - Keyed by the SHA-256 of the exact token bytes: it never holds a
//     token, and a token differing in any byte is a miss, verified afresh.
//   - Only accepted tokens are stored; a refused token is verified again
//     every time it is presented.
//   - An entry is served only while every time-dependent check Verify made
//     would still pass at the verifier's clock: not after exp plus the
//     skew, not before nbf and iat minus the skew (the clock may go back),
//     and not once the keys that verified it are due to be fetched again
//     (KeyMaxAge after their download).
//   - An entry is served only while the issuer's key set is still the
//     download that verified it: once signoff fetches the keys again (for
//     a token naming a kid it does not hold, or because they aged), each
//     cached token is verified afresh, so a key the issuer withdraws stops
//     vouching for cached tokens the moment signoff learns of it, as it
//     stops vouching for new ones.
//   - Bounded: at most size entries; when full, an arbitrary entry makes
//     room (Go's map iteration starts at a random place), so a flood of
//     distinct valid tokens costs re-verification, never memory.
//
// Everything else Verify checks (issuer, audience, algorithm, claims) is a
// function of the token's bytes and the verifier's configuration, which
// never changes: a new configuration is a new verifier with an empty
// cache.
type tokenCache struct {
	size int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*cachedToken
}

type cachedToken struct {
	tok *RequesterToken
	// validFrom is the earliest time the token's nbf and iat allow (skew
	// included); validUntil the last its exp allows (skew included);
	// keysFreshUntil when the verifying keys are due to be fetched again.
	validFrom      time.Time
	validUntil     time.Time
	keysFreshUntil time.Time
	// keys is the issuer's key cache and keysFetched the download of it
	// whose key verified the token.
	keys        *jwks.Cache
	keysFetched time.Time
}

// usableAt reports whether the entry may stand in for a verification at
// now.
func (c *cachedToken) usableAt(now time.Time) bool {
	return !now.Before(c.validFrom) && !c.overAt(now)
}

// overAt reports whether the entry can never be used again from now on:
// its exp has passed, or its keys aged or were downloaded anew. (Before
// validFrom it is unusable but not over: the clock may come back.)
func (c *cachedToken) overAt(now time.Time) bool {
	return now.After(c.validUntil) || !now.Before(c.keysFreshUntil) || !c.keys.FetchedAt().Equal(c.keysFetched)
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{size: size, entries: make(map[[sha256.Size]byte]*cachedToken)}
}

func tokenKey(raw string) [sha256.Size]byte {
	return sha256.Sum256([]byte(raw))
}

// get returns a copy of the token cached under key when it is usable at
// now. An entry that is over is dropped.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (*RequesterToken, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	if e.usableAt(now) {
		return e.tok.clone(), true
	}
	if e.overAt(now) {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
	}
	return nil, false
}

// put remembers an accepted token, unless it is already unusable at now.
// The cache keeps tok: the caller must not change it afterwards.
func (c *tokenCache) put(key [sha256.Size]byte, e *cachedToken, now time.Time) {
	if c == nil || !e.usableAt(now) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.size {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = e
}

// clone returns a copy of t whose Claims and Groups the caller may change
// without touching t.
func (t *RequesterToken) clone() *RequesterToken {
	c := *t
	c.Claims = maps.Clone(t.Claims)
	c.Groups = slices.Clone(t.Groups)
	return &c
}
