package oidc

// CachedTokens is how many accepted tokens v remembers.
func CachedTokens(v *RequesterVerifier) int {
	c := v.cache
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// ServedFromCache reports whether v would answer raw from its cache now,
// without verifying it.
func ServedFromCache(v *RequesterVerifier, raw string) bool {
	_, ok := v.cache.get(tokenKey(raw), v.opts.Now())
	return ok
}
