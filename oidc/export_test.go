package oidc

// CachedTokens is how many accepted tokens v remembers.
func CachedTokens(v *RequesterVerifier) int { return v.cache.len() }

// ServedFromCache reports whether v would answer raw from its cache now,
// without verifying it.
func ServedFromCache(v *RequesterVerifier, raw string) bool {
	_, ok := v.cache.get(tokenKey(raw), v.opts.Now())
	return ok
}
