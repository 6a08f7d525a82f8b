// Package webpage answers a browser with one of signoff's small HTML pages
// (the account-link flow's, the dev issuer's sign-in): nothing cached,
// framed, scripted or loaded from elsewhere, and no referrer.
package webpage

import (
	"net/http"
	"strconv"
)

// SetHeaders forbids caching, framing, scripts, external assets and
// referrers; formAction is the CSP form-action source list.
func SetHeaders(w http.ResponseWriter, formAction string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action "+formAction+"; frame-ancestors 'none'")
}

// WriteHTML answers with status and page, a rendered HTML page, as the
// body.
func WriteHTML(w http.ResponseWriter, status int, page []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	_, _ = w.Write(page)
}
